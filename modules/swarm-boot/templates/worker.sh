# ---- worker.sh: wait (bounded back-off) for the join info, then join ----
JOIN_TOKEN="" JOIN_ADDRESS="" DEADLINE=0

wait_for_join_info() { # back-off 2, 4, 8, 16, 30, 30, ... s; one log line per try
  local try=0 delay=2 left pause
  DEADLINE=$((SECONDS + AIRTASKS_JOIN_TIMEOUT))
  while :; do
    try=$((try + 1))
    if store_read "$AIRTASKS_MANAGER_ADDRESS_REF"; then
      JOIN_ADDRESS="$STORE_VALUE"
      if store_read "$AIRTASKS_WORKER_TOKEN_REF"; then
        JOIN_TOKEN="$STORE_VALUE" STORE_VALUE=""
        log "try $try: manager address $JOIN_ADDRESS and worker token found"
        return 0
      fi
    fi
    left=$((DEADLINE - SECONDS))
    ((left > 0)) || die "gave up after ${AIRTASKS_JOIN_TIMEOUT}s and $try tries waiting for the manager:" \
      "$STORE_REASON. Is the manager up? See its boot log (grep airtasks-boot in" \
      "/var/log/cloud-init-output.log on AWS, the startup-script log on GCP). This node reads only" \
      "$AIRTASKS_WORKER_TOKEN_REF and $AIRTASKS_MANAGER_ADDRESS_REF."
    pause=$((delay < left ? delay : left))
    log "try $try: $STORE_REASON; next try in ${pause}s (${left}s left of ${AIRTASKS_JOIN_TIMEOUT}s)"
    sleep "$pause"
    delay=$((delay * 2 > 30 ? 30 : delay * 2))
  done
}

swarm_join() { # a refused token fails at once; other errors are retried until the deadline
  if [[ "$(swarm_state)" == active ]]; then
    log "already part of a Swarm; nothing to join"
    return 0
  fi
  local out try=0
  while :; do
    try=$((try + 1))
    if out="$(docker swarm join --token "$JOIN_TOKEN" --advertise-addr "$NODE_IP" "$JOIN_ADDRESS" 2>&1)" ||
      join_settled; then
      log "joined the Swarm at $JOIN_ADDRESS as a worker for queue $AIRTASKS_QUEUE"
      return 0
    fi
    out="${out//"$JOIN_TOKEN"/<token>}"
    case "$out" in
    *"invalid join token"* | *fingerprint* | *"token"*"invalid"*)
      die "the Swarm at $JOIN_ADDRESS refused the worker token from $AIRTASKS_WORKER_TOKEN_REF: $out." \
        "It is stale or from another Swarm: rerun the boot script on the manager to publish the current one."
      ;;
    esac
    ((SECONDS < DEADLINE)) || die "could not join the Swarm at $JOIN_ADDRESS: $out" \
      "(is the manager up, and do the security groups allow 2377/tcp inside the network?)"
    log "join try $try failed: $out; retrying in 5s"
    sleep 5
    # A lost manager's address is replaced by the leader: follow it.
    if store_read "$AIRTASKS_MANAGER_ADDRESS_REF" && [[ "$STORE_VALUE" != "$JOIN_ADDRESS" ]]; then
      JOIN_ADDRESS="$STORE_VALUE"
      log "the manager address is now $JOIN_ADDRESS"
    fi
  done
}

role_maintain() { :; } # managers only

role_main() {
  # Spot workers only (templates/spot.sh), and first: a notice can come while the node waits to join.
  if declare -F spot_watcher_install >/dev/null; then spot_watcher_install; fi
  wait_for_join_info
  restart_docker
  swarm_join
}
