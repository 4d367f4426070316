# ---- common.sh: logging, hostname, tools, engine labels, secret-store wrappers ----
set -euo pipefail
umask 022

log() { printf 'airtasks-boot: %s\n' "$*"; }
warn() { printf 'airtasks-boot: WARNING: %s\n' "$*" >&2; }
die() {
  printf 'airtasks-boot: ERROR: %s\n' "$*" >&2
  exit 1
}

DAEMON_JSON=/etc/docker/daemon.json
# shellcheck disable=SC2034 # STORE_EMPTY is read by the manager part
INSTANCE_ID="" NODE_IP="" LABELS_CHANGED=false STORE_VALUE="" STORE_REASON="" STORE_EMPTY=false

# Hostname = instance id: Swarm node, Celery worker and Airflow task instance then all name the
# VM, which is how the scaler tells which nodes are busy.
set_hostname() {
  if [[ "$(hostname)" != "$INSTANCE_ID" ]]; then
    if [[ -d /run/systemd/system ]] && command -v hostnamectl >/dev/null; then
      hostnamectl set-hostname "$INSTANCE_ID"
    else
      hostname "$INSTANCE_ID"
      printf '%s\n' "$INSTANCE_ID" >/etc/hostname
    fi
    log "hostname set to $INSTANCE_ID"
  fi
  grep -qE "[[:space:]]${INSTANCE_ID}([[:space:]]|\$)" /etc/hosts || printf '127.0.1.1 %s\n' "$INSTANCE_ID" >>/etc/hosts
  if [[ -d /etc/cloud/cloud.cfg.d ]]; then # keep cloud-init from renaming the host on reboot
    printf 'preserve_hostname: true\n' >/etc/cloud/cloud.cfg.d/99-airtasks-hostname.cfg
  fi
}

pkg_install() { # pkg_install <apt package> <dnf/yum package>
  if command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null
  elif command -v dnf >/dev/null; then
    dnf install -y -q "$2"
  elif command -v yum >/dev/null; then
    yum install -y -q "$2"
  else
    return 1
  fi
}

ensure_tools() { # Docker, curl, python3 and the cloud's CLI; installed only when absent
  local tool missing=()
  for tool in curl python3 docker "${CLOUD_TOOLS[@]}"; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  ((${#missing[@]})) || return 0
  [[ "$AIRTASKS_DOCKER_INSTALL" == true ]] ||
    die "missing ${missing[*]} and docker_install is false: use an image that has them, or set docker_install = true"
  log "installing ${missing[*]}"
  for tool in "${missing[@]}"; do
    case "$tool" in
    aws) pkg_install awscli awscli || { command -v snap >/dev/null && snap install aws-cli --classic; } ;;
    docker) pkg_install docker.io docker ;;
    *) pkg_install "$tool" "$tool" ;;
    esac || die "could not install $tool; install it in the image or check the package mirror"
  done
  if [[ -d /run/systemd/system ]]; then
    systemctl enable --now docker >/dev/null 2>&1 || warn "could not enable the docker service"
  fi
}

write_labels() { # merge AIRTASKS_LABELS into daemon.json, keeping the rest of the file
  mkdir -p "$(dirname "$DAEMON_JSON")"
  local rc=0
  python3 - "$DAEMON_JSON" "${AIRTASKS_LABELS[@]}" <<'PY' || rc=$?
import json, os, sys
path, labels = sys.argv[1], sys.argv[2:]
try:
    with open(path) as fh:
        cfg = json.load(fh)
except FileNotFoundError:
    cfg = {}
ours = {item.split("=", 1)[0] for item in labels}
kept = [item for item in cfg.get("labels", []) if item.split("=", 1)[0] not in ours]
if cfg.get("labels") == kept + labels:
    sys.exit(3)
cfg["labels"] = kept + labels
with open(path + ".tmp", "w") as fh:
    json.dump(cfg, fh, indent=2)
    fh.write("\n")
os.replace(path + ".tmp", path)
PY
  case "$rc" in
  0) LABELS_CHANGED=true && log "engine labels written to $DAEMON_JSON: ${AIRTASKS_LABELS[*]}" ;;
  3) log "engine labels already in $DAEMON_JSON" ;;
  *) die "could not update $DAEMON_JSON (is it valid JSON?)" ;;
  esac
}

swarm_state() { docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unreachable; }

# After a failed `docker swarm join` dockerd may go on trying in the background (state pending),
# e.g. at the address of a manager that is gone: give it $1 seconds (default 20), then cancel it
# so that the next try (perhaps at another address) starts clean. 0 when the node is in the Swarm
# after all.
join_settled() {
  local i state="" patience="${1:-20}"
  for ((i = 0; i < patience; i++)); do
    state="$(swarm_state)"
    [[ "$state" == active ]] && return 0
    [[ "$state" == pending ]] || break
    sleep 1
  done
  [[ "$state" == inactive ]] || docker swarm leave --force >/dev/null 2>&1 || true
  return 1
}

restart_docker() { # dockerd reads labels and hostname at start: restart once, before init/join
  if [[ "$(swarm_state)" == active ]]; then
    [[ "$LABELS_CHANGED" == false ]] || warn "labels changed on a node already in the Swarm; restart docker to apply"
    return 0
  fi
  if [[ "$LABELS_CHANGED" == true || "$(docker info --format '{{.Name}}' 2>/dev/null)" != "$INSTANCE_ID" ]]; then
    if [[ -d /run/systemd/system ]]; then
      log "restarting docker to apply labels and hostname"
      systemctl restart docker
    else
      warn "no systemd here: restart dockerd yourself so it picks up $DAEMON_JSON and the hostname"
    fi
  fi
  local i
  for ((i = 0; i < 60; i++)); do
    [[ "$(swarm_state)" == unreachable ]] || return 0
    sleep 1
  done
  die "docker does not answer after 60s; see 'journalctl -u docker'"
}

# store_read <ref>: 0 and STORE_VALUE when the entry holds a real value; else 1 and STORE_REASON
# (missing, still the placeholder, access denied, ...), with STORE_EMPTY=true only when it is
# missing or the placeholder (nothing published yet). store_fetch is the cloud's part.
store_read() {
  STORE_VALUE="" STORE_REASON="" STORE_EMPTY=false
  store_fetch "$1" || return 1
  if [[ -z "$STORE_VALUE" || "$STORE_VALUE" == "$AIRTASKS_PLACEHOLDER" ]]; then
    STORE_VALUE="" STORE_EMPTY=true
    STORE_REASON="$1 still holds the placeholder (the manager has not published yet)"
    return 1
  fi
}

# store_write <ref> <value> <String|SecureString>: only when the stored value differs; the value
# goes through a private temp file (store_put), never through argv or the log.
store_write() {
  if store_read "$1" && [[ "$STORE_VALUE" == "$2" ]]; then
    log "$1 is up to date"
  else
    store_put "$@"
    log "published $1${STORE_REASON:+ (before: $STORE_REASON)}"
  fi
  STORE_VALUE=""
}
