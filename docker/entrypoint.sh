#!/usr/bin/env bash
# Entry point of the Air-Tasks image (run under tini, so SIGTERM reaches the exec'd process).
#
#   init | api-server | scheduler | dag-processor | triggerer | worker | flower | db-backup | <any command>
#
# Secrets come as files (Swarm secrets under /run/secrets); nothing here prints a secret.
#   AIRTASKS_ADMIN_PASSWORD_FILE   UI admin password -> the simple auth manager's passwords file
#   AIRTASKS_WAIT_FOR              "host:port ..." to wait for (bounded by AIRTASKS_WAIT_TIMEOUT, s)
#   AIRTASKS_WAIT_MIGRATIONS       1: wait until `airflow-init` migrated the database (bounded)
#   AIRTASKS_QUEUE, AIRTASKS_SLOTS worker: the Celery queue(s) and the concurrency (slots per node)
#   AIRTASKS_GIT_CONNECTIONS       private git bundles: {connection variable: Swarm secret}, names only
#   AIRTASKS_DATABASE_SECRET_ARN   external database: the secret with its password (Secrets Manager
#   AIRTASKS_DATABASE_SECRET_NAME  on AWS, Secret Manager on GCP), and its URL without one
#   AIRTASKS_DATABASE_URL          (airtasks.stack.database)
set -euo pipefail

log() { echo "airtasks-entrypoint: $*" >&2; }

timeout_s="${AIRTASKS_WAIT_TIMEOUT:-300}"

# As root (worker services that need the Docker socket): give the airflow user the socket's group,
# then drop privileges. Everything else runs as the image's non-root user already.
if [[ "$(id -u)" == "0" && "${AIRTASKS_STAY_ROOT:-0}" != "1" ]]; then
  if [[ -S /var/run/docker.sock ]]; then
    gid="$(stat -c %g /var/run/docker.sock)"
    getent group "$gid" >/dev/null || groupadd --gid "$gid" dockersock
    usermod -aG "$(getent group "$gid" | cut -d: -f1)" airflow
  fi
  exec setpriv --reuid=airflow --regid=0 --init-groups -- env HOME=/home/airflow USER=airflow "$0" "$@"
fi

# An external database (managed PostgreSQL: RDS, Cloud SQL): the password is read from the cloud's
# secret store with the node's identity and Airflow's database URLs exported to this process tree
# only (never the stack file, `docker inspect` or a log); airtasks.stack.database says how and why.
if [[ -n "${AIRTASKS_DATABASE_SECRET_ARN:-}${AIRTASKS_DATABASE_SECRET_NAME:-}" && "${AIRTASKS_DATABASE_SET:-0}" != "1" ]]; then
  exec python -m airtasks.stack.database "$0" "$@"
fi

# Private git bundles: the bundle's connection gets its token or deploy key from the mounted Swarm
# secret, exported to this process tree only (never the stack file or `docker inspect`). Python
# reads the secret and runs this script again with it, so the value never passes through the shell;
# airtasks.stack.git_connections says why a connection variable rather than a connections file.
if [[ -n "${AIRTASKS_GIT_CONNECTIONS:-}" && "${AIRTASKS_GIT_CONNECTIONS_SET:-0}" != "1" ]]; then
  exec python -m airtasks.stack.git_connections "$0" "$@"
fi

if [[ -n "${AIRTASKS_ADMIN_PASSWORD_FILE:-}" ]]; then
  pw_file="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-${AIRFLOW_HOME}/simple_auth_manager_passwords.json}"
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$pw_file"
  (umask 077 && python - "$AIRTASKS_ADMIN_PASSWORD_FILE" "$pw_file" "${AIRTASKS_ADMIN_USERNAME:-admin}" <<'PY'
import json, sys
src, dst, user = sys.argv[1:4]
with open(src) as fh:
    password = fh.read().strip()
with open(dst, "w") as fh:
    json.dump({user: password}, fh)
PY
  )
fi

for target in ${AIRTASKS_WAIT_FOR:-}; do
  host="${target%:*}" port="${target##*:}"
  deadline=$((SECONDS + timeout_s))
  until python -c "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 2)" "$host" "$port" 2>/dev/null; do
    if ((SECONDS > deadline)); then log "gave up waiting for $target after ${timeout_s}s"; exit 1; fi
    log "waiting for $target"
    sleep 2
  done
done

# One query per try instead of `airflow db check-migrations`, which loads Airflow in every
# container start (airtasks.stack.migrations says what it costs).
if [[ "${AIRTASKS_WAIT_MIGRATIONS:-0}" == "1" ]]; then
  python -m airtasks.stack.migrations --timeout "$timeout_s"
fi

cmd="${1:-}"
case "$cmd" in
  init)
    log "migrating the metadata database"
    airflow db migrate
    # Each sized queue's pool (AIRTASKS_QUEUE_POOLS), created or resized: see airtasks.pools.
    exec python -m airtasks.pools
    ;;
  api-server)
    shift; exec airflow api-server --proxy-headers --port 8080 "$@" ;;
  scheduler | dag-processor | triggerer)
    shift; exec airflow "$cmd" "$@" ;;
  worker)
    # The Celery hostname is the node's hostname (= instance id): the scaler maps tasks to nodes.
    shift
    exec airflow celery worker \
      --celery-hostname "celery@$(hostname)" \
      --queues "${AIRTASKS_QUEUE:-default}" \
      --concurrency "${AIRTASKS_SLOTS:-4}" "$@"
    ;;
  db-backup)
    # The stack's PostgreSQL: restored when it comes up empty, backed up on schedule (airtasks.backup).
    shift; exec airtasks db keep "$@" ;;
  flower)
    shift; exec airflow celery flower --url-prefix "${AIRTASKS_FLOWER_PREFIX:-flower}" "$@" ;;
  *)
    exec "$@" ;;
esac
