# ---- manager.sh: init or join the Swarm, publish join info, keep it fresh, node labels, the stack ----
SWARM_ACTION="" # init | join | "" (already in the Swarm)

swarm_init() {
  docker swarm init --advertise-addr "$NODE_IP" >/dev/null # its output holds a join token
  SWARM_ACTION=init
  log "Swarm initialised, advertising $NODE_IP:2377"
}

# One manager: it initialises. Three or five (manager_count): exactly one initialises, the one the
# cloud part names (AWS: lowest live manager instance id; GCP: init_manager), and only while the
# manager address is unpublished (no Swarm yet). The others, and any replacement of a lost
# manager, wait (bounded back-off, a line per try) for the address and the manager token, then
# join as managers. A published address that no manager answers is never a reason to init: the
# leader's maintenance timer points it at a live manager (see maintain below).
swarm_init_or_join() {
  if [[ "$(swarm_state)" == active ]]; then
    [[ "$(docker info --format '{{.Swarm.ControlAvailable}}')" == true ]] ||
      die "this node is in a Swarm but not as a manager; run 'docker swarm leave' first"
    log "Swarm already active here; not initialising"
    return 0
  fi
  if ((AIRTASKS_MANAGER_COUNT == 1)); then
    swarm_init
    return 0
  fi
  local try=0 delay=2 left pause out address token deadline=$((SECONDS + AIRTASKS_JOIN_TIMEOUT))
  while :; do
    try=$((try + 1))
    if store_read "$AIRTASKS_MANAGER_ADDRESS_REF"; then
      address="$STORE_VALUE"
      if store_read "$AIRTASKS_MANAGER_TOKEN_REF"; then
        token="$STORE_VALUE" STORE_VALUE=""
        if out="$(timeout 60 docker swarm join --token "$token" --advertise-addr "$NODE_IP" "$address" 2>&1)" ||
          join_settled "$(join_patience "$address")"; then
          SWARM_ACTION="join"
          log "try $try: joined the Swarm at $address as a manager"
          return 0
        fi
        out="${out//"$token"/<token>}" token=""
        STORE_REASON="joining $address as a manager failed: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-160)"
      fi
    elif [[ "$STORE_EMPTY" == true ]] && is_init_manager; then
      log "try $try: no Swarm published yet and this is the first manager ($INIT_MANAGER)"
      swarm_init
      return 0
    elif [[ "$STORE_EMPTY" == true ]]; then
      STORE_REASON="$STORE_REASON; ${INIT_MANAGER:-the first manager} initialises the Swarm"
    fi
    left=$((deadline - SECONDS))
    ((left > 0)) || die "gave up after ${AIRTASKS_JOIN_TIMEOUT}s and $try tries to join the managers:" \
      "$STORE_REASON. If every manager was lost, the Swarm is gone: set $AIRTASKS_MANAGER_ADDRESS_REF" \
      "back to '$AIRTASKS_PLACEHOLDER' and restart the managers to build a new one."
    pause=$((delay < left ? delay : left))
    log "try $try: $STORE_REASON; next try in ${pause}s (${left}s left of ${AIRTASKS_JOIN_TIMEOUT}s)"
    sleep "$pause"
    delay=$((delay * 2 > 30 ? 30 : delay * 2))
  done
}

# A manager join that reached a live manager may already have made this node a member of the
# Raft cluster while it catches up (state pending, slow on a loaded host). Cancelling it then
# leaves the cluster a member that never answers: with one manager already lost, a quorum of
# three out of four cannot be met and the Swarm has no leader. So wait up to 5 min for a join at
# an address that answers; 20 s at one that does not (a lost manager's, not yet republished).
join_patience() {
  if timeout 5 bash -c ": </dev/tcp/${1%:*}/${1##*:}" 2>/dev/null; then echo 300; else echo 20; fi
}

manager_addresses() { # <ip>:2377 of every reachable manager, one a line
  local ids
  ids="$(docker node ls --filter role=manager --format '{{.ID}}')" || return 1
  # shellcheck disable=SC2086 # one argument per node id
  docker node inspect --format \
    '{{if eq .ManagerStatus.Reachability "reachable"}}{{.ManagerStatus.Addr}}{{end}}' $ids | grep .
}

# The address workers and new managers join at: kept while it is a reachable manager, else ours.
publish_address() {
  local current=""
  store_read "$AIRTASKS_MANAGER_ADDRESS_REF" && current="$STORE_VALUE" STORE_VALUE=""
  if [[ -n "$current" && "$current" != "$NODE_IP:2377" ]] && manager_addresses | grep -qxF -- "$current"; then
    log "$AIRTASKS_MANAGER_ADDRESS_REF points at manager $current, which is reachable; kept"
    return 0
  fi
  store_write "$AIRTASKS_MANAGER_ADDRESS_REF" "$NODE_IP:2377" String
}

publish_join_info() { # tokens first, address last: a worker that finds the address finds a token
  store_write "$AIRTASKS_WORKER_TOKEN_REF" "$(docker swarm join-token -q worker)" SecureString
  store_write "$AIRTASKS_MANAGER_TOKEN_REF" "$(docker swarm join-token -q manager)" SecureString
  publish_address
}

# `airtasks-boot maintain`, every 30 s on every manager (manager_count > 1); only the Swarm leader
# acts: it keeps the published address on a reachable manager, and demotes and removes a manager
# node that is Down and whose instance is gone (its replacement joined under a new name).
role_maintain() {
  [[ "$(docker node inspect self --format '{{.ManagerStatus.Leader}}' 2>/dev/null)" == true ]] || return 0
  publish_address
  local id host
  while read -r id host; do
    if [[ -z "$id" ]] || ! instance_gone "$host"; then continue; fi
    log "manager $host is Down and its instance is gone: demoting and removing it"
    if ! docker node demote "$id" >/dev/null || ! docker node rm --force "$id" >/dev/null; then
      warn "could not remove manager node $host ($id)"
    fi
  done < <(docker node ls --filter role=manager --format '{{.ID}} {{.Hostname}} {{.Status}}' | awk '$3 == "Down" {print $1, $2}')
}

install_maintenance() {
  ((AIRTASKS_MANAGER_COUNT > 1)) || return 0
  install -m 0755 "$0" /usr/local/sbin/airtasks-boot
  if [[ -d /run/systemd/system ]]; then
    printf '%s\n' '[Unit]' 'Description=Air-Tasks manager maintenance (published address, lost managers)' \
      'After=docker.service' '[Service]' 'Type=oneshot' 'ExecStart=/usr/local/sbin/airtasks-boot maintain' \
      >/etc/systemd/system/airtasks-maintain.service
    printf '%s\n' '[Timer]' 'OnBootSec=30' 'OnUnitActiveSec=30' '[Install]' 'WantedBy=timers.target' \
      >/etc/systemd/system/airtasks-maintain.timer
    systemctl daemon-reload
    systemctl enable --now airtasks-maintain.timer >/dev/null 2>&1
    log "manager maintenance: every 30 s by airtasks-maintain.timer"
  else
    warn "no systemd here: run '/usr/local/sbin/airtasks-boot maintain' every 30 s yourself"
  fi
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

# ---- the stack (deploy_stack): what the manager runs once its Swarm is up ----
# Rendered here for this cluster's queues by the image's own `airtasks stack render`, with the
# queues' workers placed by engine labels (daemon.json, written by each node's boot script before
# it joins), so a new node runs its worker the moment it joins; Swarm secrets created once
# (`airtasks secrets create`: the admin password, root-only, and the public certificate land in
# /etc/airtasks); the scaler's config (and this script's AWS endpoint, if one is set) handed to the
# manager's worker; an optional compose override on top; then `docker stack deploy`. Skipped when
# no stack is set; safe to rerun (no secret is rotated, the stack is updated in place).
#
# Private repositories: each git bundle's `credential` names an SSM parameter or a Secret Manager
# secret. `airtasks secrets create --git-credential BUNDLE=NAME` reads them all with this VM's
# identity (the cluster module grants the managers exactly those) before it creates anything, and
# makes each a Swarm secret named by a fingerprint of its value: a rerun with the same value keeps
# it, a rotated value (put a new one in the store, then rerun this script or reboot the manager)
# gets a new secret that the deploy hands to the services, and the old one goes at the next run.
# A missing or unreadable credential stops here, before the stack is rendered or deployed.
STACK_DIR=/etc/airtasks

stack_cli() { # stack_cli [docker run options] -- <airtasks args>: the image's CLI, as root
  local opts=()
  while [[ "$1" != -- ]]; do
    opts+=("$1")
    shift
  done
  shift
  docker run --rm --user 0 --entrypoint airtasks -v "$STACK_DIR:$STACK_DIR" "${opts[@]}" \
    "$AIRTASKS_STACK_IMAGE" "$@"
}

# The scaler (the manager's worker) and the Cluster page (the API server) read the same config:
# both get AIRTASKS_CONFIG. A private AWS endpoint this script was pointed at (AWS_ENDPOINT_URL)
# is where every service that calls AWS goes too: those two, each worker (task logs, bucket DAG
# bundles), the triggerer, the dag-processor, which syncs bucket DAG bundles, and db-backup.
write_scaler_override() {
  python3 - "$1" "$AIRTASKS_STACK_SCALER_CONFIG" "${AWS_ENDPOINT_URL:-}" "$AIRTASKS_STACK_QUEUES" "$AIRTASKS_STACK_BACKUPS" \
    "$AIRTASKS_STACK_DATABASE" <<'PY'
import json, sys
path, config, endpoint, queues, backups, database = sys.argv[1:7]
scaler = ("worker-manager", "airflow-apiserver")
services = {name: {} for name in scaler + ("airflow-triggerer", "airflow-dag-processor")}
services.update({f"worker-{q.split(':')[0]}": {} for q in queues.split() or ["default:4"]})
if backups:  # the stack has a db-backup service only with backups on
    services["db-backup"] = {}
if database:  # every Airflow process reads the managed database's secret when it starts
    services.update({name: {} for name in ("airflow-init", "airflow-scheduler", "flower")})
if config:
    for name in scaler:
        services[name]["AIRTASKS_CONFIG"] = json.dumps(json.loads(config), separators=(",", ":"))
if endpoint:
    for env in services.values():
        env["AWS_ENDPOINT_URL"] = endpoint
# No interpolation by `docker stack deploy`; a service with nothing to add is left out.
services = {n: {"environment": {k: v.replace("$", "$$") for k, v in e.items()}} for n, e in services.items() if e}
with open(path, "w") as fh:  # JSON is YAML
    json.dump({"version": "3.8", "services": services}, fh, indent=2)
PY
}

git_credentials() { # BUNDLE=NAME for each git bundle that names a credential (names only)
  python3 -c 'import json, sys
for b in json.loads(sys.argv[1]):
    name = (b.get("git") or {}).get("credential")
    if name:
        print(b["name"] + "=" + name)' "$AIRTASKS_STACK_DAG_BUNDLES"
}

pull_image() { # a registry that is still being filled, or slow to answer: back-off, bounded
  local try delay=5
  docker image inspect "$1" >/dev/null 2>&1 && return 0
  for ((try = 1; try <= 12; try++)); do
    docker pull -q "$1" >/dev/null 2>&1 && return 0
    log "pull of $1 failed (try $try of 12); next try in ${delay}s"
    sleep "$delay"
    delay=$((delay * 2 > 30 ? 30 : delay * 2))
  done
  docker pull -q "$1" >/dev/null || die "cannot pull $1 (check the image name and the registry's access)"
}

pull_stack_images() { # all at once: the manager runs every one of them
  local image pids=() seen=" "
  for image in "$AIRTASKS_STACK_IMAGE" "$AIRTASKS_STACK_POSTGRES_IMAGE" "$AIRTASKS_STACK_RABBITMQ_IMAGE" \
    "$AIRTASKS_STACK_PROXY_IMAGE"; do
    [[ -n "$image" && "$seen" != *" $image "* ]] || continue
    seen+="$image "
    pull_image "$image" &
    pids+=("$!")
  done
  for image in "${pids[@]}"; do wait "$image" || exit 1; done
  log "images pulled:$seen"
}

# The last deploy's settings, as a fingerprint of its compose files and images in the label of a
# Swarm config: a manager that joins an existing Swarm compares its own with it.
STACK_SETTINGS=airtasks-stack-settings

deployed_settings() {
  docker config inspect -f '{{index .Spec.Labels "airtasks.fingerprint"}}' "$STACK_SETTINGS" 2>/dev/null || true
}

record_settings() { # record_settings FINGERPRINT
  docker config rm "$STACK_SETTINGS" >/dev/null 2>&1 || true
  printf '%s\n' "$1" | docker config create --label "airtasks.fingerprint=$1" "$STACK_SETTINGS" - >/dev/null ||
    log "could not record the stack's settings (another manager deploying at once?); the next joining manager deploys again"
}

deploy_stack() { # deploy_stack [if-changed]
  local mode="${1:-always}"
  if [[ -z "$AIRTASKS_STACK_IMAGE" ]]; then
    log "no stack configured; not deploying"
    return 0
  fi
  local image="$AIRTASKS_STACK_IMAGE" item credentials
  local render=() secrets_args=() git=() files=(-c "$STACK_DIR/stack.yml") vars=(AIRTASKS_IMAGE="$image")
  # Where the CLI reads git credentials: this script's region and endpoints, the VM's identity.
  local store_env=(-e "AIRTASKS_CLOUD=$AIRTASKS_CLOUD")
  if [[ "$AIRTASKS_CLOUD" == aws ]]; then
    store_env+=(-e "AWS_DEFAULT_REGION=$AIRTASKS_REGION")
    [[ -z "${AWS_ENDPOINT_URL:-}" ]] || store_env+=(-e "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL")
  else
    store_env+=(-e "AIRTASKS_PROJECT=${AIRTASKS_PROJECT:-}")
    for item in GCE_METADATA_HOST CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER; do
      [[ -z "${!item:-}" ]] || store_env+=(-e "$item=${!item}")
    done
  fi
  log "preparing stack $AIRTASKS_STACK_NAME from $image"
  install -d -m 0755 "$STACK_DIR"
  pull_stack_images
  for item in "$NODE_IP" $AIRTASKS_STACK_TLS_HOSTNAMES localhost 127.0.0.1; do secrets_args+=(--tls-hostname "$item"); done
  [[ -e "$STACK_DIR/admin_password" ]] || secrets_args+=(--admin-password-file "$STACK_DIR/admin_password")
  [[ -e "$STACK_DIR/tls_cert.pem" ]] || secrets_args+=(--tls-cert-out "$STACK_DIR/tls_cert.pem")
  rm -f "$STACK_DIR/git_secrets.json"
  if [[ -n "$AIRTASKS_STACK_DAG_BUNDLES" ]]; then
    credentials="$(git_credentials)" || die "cannot read the git bundles' credentials from AIRTASKS_STACK_DAG_BUNDLES"
    for item in $credentials; do git+=(--git-credential "$item"); done
  fi
  if ((${#git[@]})); then
    secrets_args+=("${git[@]}" --cloud "$AIRTASKS_CLOUD" --git-secrets-out "$STACK_DIR/git_secrets.json")
    render+=(--git-secrets "$STACK_DIR/git_secrets.json")
  fi
  stack_cli -v /var/run/docker.sock:/var/run/docker.sock "${store_env[@]}" -- secrets create "${secrets_args[@]}" |
    sed 's/^/airtasks-boot: secret /' || die "airtasks secrets create failed (the line above says why); nothing deployed"

  for item in $AIRTASKS_STACK_QUEUES; do render+=(--queue "$item"); done
  if [[ -n "$AIRTASKS_STACK_TASK_LOGS" ]]; then
    render+=(--task-logs "$AIRTASKS_STACK_TASK_LOGS")
    [[ "$AIRTASKS_CLOUD" != aws ]] || render+=(--task-logs-region "$AIRTASKS_REGION")
  fi
  # The user's DAG bundles, beside the image's own DAGs; a private repository's credential by its
  # Swarm secret's name (git_secrets.json, above), never the value.
  [[ -z "$AIRTASKS_STACK_DAG_BUNDLES" ]] || render+=(--dag-bundles "$AIRTASKS_STACK_DAG_BUNDLES")
  # An external database (managed PostgreSQL): its endpoint and the secret with its password, which
  # each service reads at start; the stack then has no `postgres` service.
  [[ -z "$AIRTASKS_STACK_DATABASE" ]] || render+=(--database "$AIRTASKS_STACK_DATABASE")
  # Scheduled dumps of the stack's PostgreSQL to the bucket, and a restore when it comes up empty:
  # the `db-backup` service, on a manager (only the managers' role may read a dump).
  [[ -z "$AIRTASKS_STACK_BACKUPS" ]] || render+=(--backups "$AIRTASKS_STACK_BACKUPS")
  stack_cli -- stack render "${render[@]}" --worker-placement engine --output "$STACK_DIR/stack.yml" 2>/dev/null ||
    die "airtasks stack render failed (is $image an Air-Tasks image?)"
  local database="in the stack"
  [[ -z "$AIRTASKS_STACK_DATABASE" ]] || database="external (managed)"
  local backups=off
  [[ -z "$AIRTASKS_STACK_BACKUPS" ]] || backups="$(python3 -c 'import json, sys
b = json.loads(sys.argv[1])
print(b["url"], "every", b["every_minutes"], "min")' "$AIRTASKS_STACK_BACKUPS")" || backups=on
  log "stack rendered for queues: ${AIRTASKS_STACK_QUEUES:-default:4 (the default)};" \
    "task logs: ${AIRTASKS_STACK_TASK_LOGS:-on the nodes}; DAG bundles: ${AIRTASKS_STACK_DAG_BUNDLES:+yours and }the image's;" \
    "database: $database; backups: $backups"

  write_scaler_override "$STACK_DIR/scaler.override.yml" || die "could not write the scaler's settings"
  files+=(-c "$STACK_DIR/scaler.override.yml")
  if [[ -n "$AIRTASKS_STACK_OVERRIDE" ]]; then
    printf '%s\n' "$AIRTASKS_STACK_OVERRIDE" >"$STACK_DIR/override.yml"
    files+=(-c "$STACK_DIR/override.yml")
  fi
  [[ -z "$AIRTASKS_STACK_POSTGRES_IMAGE" ]] || vars+=(AIRTASKS_POSTGRES_IMAGE="$AIRTASKS_STACK_POSTGRES_IMAGE")
  [[ -z "$AIRTASKS_STACK_RABBITMQ_IMAGE" ]] || vars+=(AIRTASKS_RABBITMQ_IMAGE="$AIRTASKS_STACK_RABBITMQ_IMAGE")
  [[ -z "$AIRTASKS_STACK_PROXY_IMAGE" ]] || vars+=(AIRTASKS_PROXY_IMAGE="$AIRTASKS_STACK_PROXY_IMAGE")
  # An API server on each manager (at most one per node), so losing one leaves the others answering.
  vars+=(AIRTASKS_API_REPLICAS="$AIRTASKS_MANAGER_COUNT")
  # A manager that joins deploys only what changed since the last deploy (a new launch template:
  # another image, queues, a switch to a managed database), so replacing the managers rolls a
  # change out, and a replacement with the same settings leaves the running stack alone.
  local fingerprint
  fingerprint="$({
    for item in "${files[@]}"; do [[ "$item" == -c ]] || cat "$item"; done
    printf '%s\n' "${vars[@]}"
  } | sha256sum | cut -c1-16)"
  if [[ "$mode" == if-changed && "$(deployed_settings)" == "$fingerprint" ]]; then
    log "stack $AIRTASKS_STACK_NAME already deployed with this manager's settings ($fingerprint); not deploying"
    return 0
  fi
  # --prune: a service the settings no longer render goes (`postgres` after a switch to a managed
  # database).
  env "${vars[@]}" docker stack deploy --prune --with-registry-auth "${files[@]}" "$AIRTASKS_STACK_NAME" >/dev/null ||
    die "docker stack deploy failed"
  record_settings "$fingerprint"
  log "stack $AIRTASKS_STACK_NAME deployed with settings $fingerprint: the UI answers on https://$NODE_IP/ once it is healthy" \
    "(user admin; password in $STACK_DIR/admin_password on the first manager, certificate $STACK_DIR/tls_cert.pem)"
}

role_main() {
  restart_docker
  swarm_init_or_join
  publish_join_info
  install_label_sync
  install_maintenance
  if [[ "$SWARM_ACTION" == join ]]; then
    deploy_stack if-changed
  else
    deploy_stack
  fi
}
