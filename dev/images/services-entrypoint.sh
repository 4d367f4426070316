#!/usr/bin/env bash
# Official-image-compatible entry point for postgres, rabbitmq-server and nginx (see services.Dockerfile).
set -euo pipefail

case "${1:-}" in
  postgres)
    PGDATA="${PGDATA:-/var/lib/postgresql/data}"
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 0700 "$PGDATA"
    user="${POSTGRES_USER:-postgres}" db="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"
    if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
      pwfile="$(mktemp)"
      if [[ -n "${POSTGRES_PASSWORD_FILE:-}" ]]; then cat "$POSTGRES_PASSWORD_FILE" >"$pwfile";
      else printf '%s' "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD_FILE or POSTGRES_PASSWORD}" >"$pwfile"; fi
      chown postgres "$pwfile"
      setpriv --reuid=postgres --regid=postgres --init-groups \
        initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
      rm -f "$pwfile"
      echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
      echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
      if [[ "$db" != "postgres" ]]; then
        echo "CREATE DATABASE \"$db\";" | setpriv --reuid=postgres --regid=postgres --init-groups \
          postgres --single -D "$PGDATA" postgres >/dev/null
      fi
    fi
    shift
    exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" "$@"
    ;;
  rabbitmq-server)
    export HOME=/var/lib/rabbitmq
    conf=/etc/rabbitmq/rabbitmq.conf
    : >"$conf"
    [[ -n "${RABBITMQ_DEFAULT_USER:-}" ]] && echo "default_user = ${RABBITMQ_DEFAULT_USER}" >>"$conf"
    [[ -n "${RABBITMQ_DEFAULT_PASS:-}" ]] && echo "default_pass = ${RABBITMQ_DEFAULT_PASS}" >>"$conf"
    echo "log.console = true" >>"$conf"
    chmod 0600 "$conf"
    export RABBITMQ_CONFIG_FILE="$conf"
    # The CLI (healthcheck, run as root) needs the server's Erlang cookie.
    if [[ ! -s "$HOME/.erlang.cookie" ]]; then
      head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$HOME/.erlang.cookie"
    fi
    chmod 0400 "$HOME/.erlang.cookie"
    install -m 0400 "$HOME/.erlang.cookie" /root/.erlang.cookie
    exec /usr/lib/rabbitmq/bin/rabbitmq-server
    ;;
  *)
    exec "$@"
    ;;
esac
