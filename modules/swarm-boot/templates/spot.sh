# ---- spot.sh: the interruption watcher, on spot (AWS) and Spot/preemptible (GCP) workers only ----
# A notice gives 2 minutes (AWS) or 30 s (GCP): the watcher cancels this node's Celery consumer,
# declares the broker queue airtasks.interrupted.<instance>.<deadline> for the scaler, and sets
# the engine label airtasks.interrupted=<deadline epoch>. The Python file is
# templates/spot_watcher.py, embedded by modules/swarm-boot.
SPOT_WATCHER=/usr/local/lib/airtasks/spot_watcher.py

spot_watcher_install() {
  local unit=/etc/systemd/system/airtasks-spot-watcher.service before=""
  mkdir -p "$(dirname "$SPOT_WATCHER")"
  [[ -f "$unit" ]] && before="$(cat "$SPOT_WATCHER" "$unit")"
  cat >"$SPOT_WATCHER" <<'AIRTASKS_SPOT_WATCHER'
@SPOT_WATCHER_PY@
AIRTASKS_SPOT_WATCHER
  printf '%s\n' '[Unit]' 'Description=Air-Tasks spot interruption watcher' 'After=docker.service network-online.target' \
    '[Service]' "ExecStart=/usr/bin/env python3 $SPOT_WATCHER --cloud $AIRTASKS_CLOUD --endpoint $(metadata_url) --instance $INSTANCE_ID --queue $AIRTASKS_QUEUE" \
    'Restart=always' 'RestartSec=5' '[Install]' 'WantedBy=multi-user.target' >"$unit"
  if [[ ! -d /run/systemd/system ]]; then
    warn "no systemd here: run '$SPOT_WATCHER' yourself to act on spot notices"
    return 0
  fi
  systemctl daemon-reload
  if systemctl is-active --quiet airtasks-spot-watcher.service; then
    if [[ "$before" == "$(cat "$SPOT_WATCHER" "$unit")" ]]; then
      log "spot watcher already running"
      return 0
    fi
    systemctl disable --now airtasks-spot-watcher.service >/dev/null 2>&1 || true
  fi
  systemctl enable --now airtasks-spot-watcher.service >/dev/null 2>&1 || warn "could not start the spot watcher"
  log "spot watcher: airtasks-spot-watcher.service acts on interruption notices"
}
