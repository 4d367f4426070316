# ---- gcp.sh: metadata server and Secret Manager REST (curl) ----
CLOUD_TOOLS=()
GCE_METADATA="http://${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1"
SECRETMANAGER="${CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER:-https://secretmanager.googleapis.com/}"
SECRETMANAGER="${SECRETMANAGER%/}/v1/projects"
metadata_url() { printf '%s' "$GCE_METADATA"; }

gce_get() {
  curl -fsS --retry 10 --retry-connrefused --max-time 5 -H 'Metadata-Flavor: Google' "$GCE_METADATA/$1"
}

read_metadata() {
  INSTANCE_ID="$(gce_get instance/name)" || die "cannot read the instance name from $GCE_METADATA"
  NODE_IP="$(gce_get instance/network-interfaces/0/ip)" || die "cannot read the instance address"
  if [[ -z "$AIRTASKS_PROJECT" ]]; then
    AIRTASKS_PROJECT="$(gce_get project/project-id)" || die "cannot read the project id"
  fi
}

auth_header() { # "Authorization: Bearer ..." from the service account's metadata-server token
  gce_get instance/service-accounts/default/token |
    python3 -c 'import json,sys; print("Authorization: Bearer " + json.load(sys.stdin)["access_token"])'
}

store_fetch() {
  local header out code
  header="$(auth_header)" || {
    STORE_REASON="no access token from the metadata server"
    return 1
  }
  out="$(curl -sS -w '\n%{http_code}' -H @<(printf '%s\n' "$header") \
    "$SECRETMANAGER/$AIRTASKS_PROJECT/secrets/$1/versions/latest:access" 2>&1)" || true
  code="${out##*$'\n'}"
  case "$code" in
  200) ;;
  404)
    STORE_REASON="secret $1 has no version yet"
    # shellcheck disable=SC2034 # read by the manager part
    STORE_EMPTY=true
    return 1
    ;;
  403) STORE_REASON="access to secret $1 denied (check the service account)" && return 1 ;;
  *) STORE_REASON="reading secret $1 failed (HTTP ${code:0:40})" && return 1 ;;
  esac
  STORE_VALUE="$(python3 -c 'import base64,json,sys
print(base64.b64decode(json.load(sys.stdin)["payload"]["data"]).decode())' <<<"${out%$'\n'*}")" || {
    STORE_REASON="secret $1 has an unreadable payload"
    return 1
  }
}

# IAM grants made just before the VM can take minutes to reach Secret Manager (403 until then):
# addVersion is tried again with the workers' back-off (2, 4, 8, 16, 30, 30 ... s, one log line
# per try) for up to join_timeout_seconds, which is as long as the workers wait for it anyway.
store_put() { # $3 (the SSM type) means nothing here: every secret is private
  local header tmp code reason try=0 delay=2 left pause deadline=$((SECONDS + AIRTASKS_JOIN_TIMEOUT))
  tmp="$(umask 077 && mktemp)"
  printf '{"payload": {"data": "%s"}}' "$(printf '%s' "$2" | base64 -w0)" >"$tmp"
  while true; do
    try=$((try + 1))
    code=000 reason="no access token from the metadata server"
    if header="$(auth_header)"; then
      code="$(curl -s -o /dev/null -w '%{http_code}' -X POST -H @<(printf '%s\n' "$header") \
        -H 'Content-Type: application/json' --data-binary "@$tmp" \
        "$SECRETMANAGER/$AIRTASKS_PROJECT/secrets/$1:addVersion" 2>/dev/null)" || true
      case "$code" in
      2??)
        ((try == 1)) || log "try $try: added a version to secret $1"
        break
        ;;
      000) reason="Secret Manager did not answer" ;;
      403) reason="HTTP 403, permission denied (a new IAM grant can take minutes to apply)" ;;
      *) reason="HTTP ${code:0:3}" ;;
      esac
    fi
    left=$((deadline - SECONDS))
    if ((left <= 0)) || [[ "$code" == 400 ]]; then
      rm -f "$tmp"
      die "could not add a version to secret $1 after $try tries: $reason" \
        "(does the service account have secretmanager.versions.add on it?)"
    fi
    pause=$((delay < left ? delay : left))
    log "try $try: adding a version to secret $1 failed: $reason; next try in ${pause}s (${left}s left of ${AIRTASKS_JOIN_TIMEOUT}s)"
    sleep "$pause"
    delay=$((delay * 2 > 30 ? 30 : delay * 2))
  done
  rm -f "$tmp"
}

# Managers (manager_count 3 or 5): the one that initialises a new Swarm is named by init_manager
# (the first manager VM); INIT_MANAGER.
is_init_manager() {
  INIT_MANAGER="${AIRTASKS_INIT_MANAGER:-$INSTANCE_ID}"
  [[ "$INIT_MANAGER" == "$INSTANCE_ID" ]]
}

# GCP VMs keep their name when recreated: a Down node is gone for good once a Ready node has its name.
instance_gone() {
  docker node ls --format '{{.Hostname}} {{.Status}}' | grep -qxF -- "$1 Ready"
}
