# ---- manager.sh: init the Swarm, publish join info, node labels, the stack ----
swarm_init() {
  if [[ "$(swarm_state)" == active ]]; then
    [[ "$(docker info --format '{{.Swarm.ControlAvailable}}')" == true ]] ||
      die "this node is in a Swarm but not as a manager; run 'docker swarm leave' first"
    log "Swarm already active here; not initialising"
    return 0
  fi
  docker swarm init --advertise-addr "$NODE_IP" >/dev/null # its output holds a join token
  log "Swarm initialised, advertising $NODE_IP:2377"
}

publish_join_info() { # tokens first, address last: a worker that finds the address finds a token
  store_write "$AIRTASKS_WORKER_TOKEN_REF" "$(docker swarm join-token -q worker)" SecureString
  store_write "$AIRTASKS_MANAGER_TOKEN_REF" "$(docker swarm join-token -q manager)" SecureString
  store_write "$AIRTASKS_MANAGER_ADDRESS_REF" "$NODE_IP:2377" String
}

# A worker cannot set its own node labels: copy airtasks.* engine labels to node labels (for
# node.labels.* placement) every 30 s with a systemd timer, or once where there is no systemd.
install_label_sync() {
  cat >/usr/local/sbin/airtasks-node-labels <<'SYNC'
#!/usr/bin/env bash
# Copy airtasks.* engine labels of every Swarm node to its node labels (installed by airtasks-boot).
set -uo pipefail
fmt() { printf '{{range $k, $v := %s}}{{$k}}={{$v}}{{"\\n"}}{{end}}' "$1"; }
for node in $(docker node ls -q); do
  have="$(docker node inspect "$node" --format "$(fmt .Spec.Labels)")"
  args=()
  while IFS= read -r kv; do
    [[ "$kv" == airtasks.* ]] && ! grep -qxF -- "$kv" <<<"$have" && args+=(--label-add "$kv")
  done < <(docker node inspect "$node" --format "$(fmt .Description.Engine.Labels)")
  ((${#args[@]} == 0)) || docker node update "${args[@]}" "$node" >/dev/null
done
SYNC
  chmod 0755 /usr/local/sbin/airtasks-node-labels
  if [[ -d /run/systemd/system ]]; then
    printf '%s\n' '[Unit]' 'Description=Copy airtasks.* engine labels to Swarm node labels' 'After=docker.service' \
      '[Service]' 'Type=oneshot' 'ExecStart=/usr/local/sbin/airtasks-node-labels' \
      >/etc/systemd/system/airtasks-node-labels.service
    printf '%s\n' '[Timer]' 'OnBootSec=30' 'OnUnitActiveSec=30' '[Install]' 'WantedBy=timers.target' \
      >/etc/systemd/system/airtasks-node-labels.timer
    systemctl daemon-reload
    systemctl enable --now airtasks-node-labels.timer >/dev/null 2>&1
    log "node labels: copied every 30 s by airtasks-node-labels.timer"
  else
    /usr/local/sbin/airtasks-node-labels || warn "copying node labels failed"
    warn "no systemd here: node labels copied once; run /usr/local/sbin/airtasks-node-labels after nodes join"
  fi
}

# The stack: Swarm secrets created once (`airtasks secrets create` skips existing ones), then
# `docker stack deploy` of the compose file the image carries. Skipped when no stack is set.
deploy_stack() {
  if [[ -z "$AIRTASKS_STACK_IMAGE" ]]; then
    log "no stack configured; not deploying"
    return 0
  fi
  local image="$AIRTASKS_STACK_IMAGE" compose=/etc/airtasks/stack.yml
  log "deploying stack $AIRTASKS_STACK_NAME from $image"
  mkdir -p "$(dirname "$compose")"
  docker image inspect "$image" >/dev/null 2>&1 || docker pull -q "$image" >/dev/null ||
    die "cannot pull $image (check the image name and the registry's access)"
  docker run --rm -v /var/run/docker.sock:/var/run/docker.sock "$image" airtasks secrets create ||
    die "airtasks secrets create failed"
  docker run --rm "$image" cat /opt/airtasks/docker-compose-CeleryExecutor.yml >"$compose" ||
    die "$image has no /opt/airtasks/docker-compose-CeleryExecutor.yml"
  AIRTASKS_IMAGE="$image" docker stack deploy --with-registry-auth -c "$compose" "$AIRTASKS_STACK_NAME" >/dev/null ||
    die "docker stack deploy failed"
  log "stack $AIRTASKS_STACK_NAME deployed"
}

role_main() {
  restart_docker
  swarm_init
  publish_join_info
  install_label_sync
  deploy_stack
}
