# ---- aws.sh: IMDSv2 and SSM Parameter Store (honours AWS_ENDPOINT_URL) ----
CLOUD_TOOLS=(aws)
IMDS="${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}"
IMDS="${IMDS%/}"
IMDS_TOKEN=""
metadata_url() { printf '%s' "$IMDS"; }

imds_get() { # a session token first (PUT: IMDSv2 is required), then the path
  if [[ -z "$IMDS_TOKEN" ]]; then
    IMDS_TOKEN="$(curl -fsS --retry 10 --retry-connrefused --max-time 5 -X PUT \
      -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600' "$IMDS/latest/api/token")" ||
      die "cannot get an IMDSv2 token from $IMDS (is the metadata service enabled?)"
  fi
  curl -fsS --retry 10 --retry-connrefused --max-time 5 \
    -H "X-aws-ec2-metadata-token: $IMDS_TOKEN" "$IMDS/latest/meta-data/$1"
}

read_metadata() {
  INSTANCE_ID="$(imds_get instance-id)" || die "cannot read instance-id from $IMDS"
  NODE_IP="$(imds_get local-ipv4)" || die "cannot read local-ipv4 from $IMDS"
  if [[ -z "$AIRTASKS_REGION" ]]; then
    AIRTASKS_REGION="$(imds_get placement/region)" || die "cannot read the region from $IMDS"
  fi
}

store_fetch() {
  local out rc=0
  out="$(aws ssm get-parameter --region "$AIRTASKS_REGION" --name "$1" --with-decryption \
    --query Parameter.Value --output text 2>&1)" || rc=$?
  if ((rc == 0)); then
    STORE_VALUE="$out"
    return 0
  fi
  case "$out" in
  *ParameterNotFound*)
    STORE_REASON="$1 does not exist yet"
    # shellcheck disable=SC2034 # read by the manager part
    STORE_EMPTY=true
    ;;
  *AccessDenied*) STORE_REASON="access to $1 denied (check the instance role)" ;;
  *) STORE_REASON="reading $1 failed: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-200)" ;;
  esac
  return 1
}

store_put() {
  local tmp rc=0
  tmp="$(umask 077 && mktemp)"
  printf '{"Name": "%s", "Value": "%s", "Type": "%s", "Overwrite": true}' "$1" "$2" "$3" >"$tmp"
  aws ssm put-parameter --region "$AIRTASKS_REGION" --cli-input-json "file://$tmp" >/dev/null || rc=$?
  rm -f "$tmp"
  ((rc == 0)) || die "could not write $1 (does the manager role allow ssm:PutParameter on it?)"
}

# Managers (manager_count 3 or 5): the one that initialises a new Swarm is the lowest instance id
# among the cluster's live managers (tags airtasks:cluster, airtasks:role=manager); INIT_MANAGER.
live_managers() {
  aws ec2 describe-instances --region "$AIRTASKS_REGION" --output text \
    --filters "Name=tag:airtasks:cluster,Values=$AIRTASKS_CLUSTER" "Name=tag:airtasks:role,Values=manager" \
    "Name=instance-state-name,Values=pending,running" --query 'Reservations[].Instances[].InstanceId' |
    tr -s '[:blank:]' '\n' | grep -E '^i-' | sort
}

is_init_manager() {
  INIT_MANAGER="$(live_managers | head -n1)" || INIT_MANAGER=""
  [[ -n "$INIT_MANAGER" && "$INIT_MANAGER" == "$INSTANCE_ID" ]]
}

# A Swarm node named <instance id> whose instance is no longer pending or running is gone for good.
instance_gone() {
  local state
  state="$(aws ec2 describe-instances --region "$AIRTASKS_REGION" --instance-ids "$1" --output text \
    --query 'Reservations[].Instances[].State.Name' 2>&1)" || [[ "$state" == *InvalidInstanceID* ]] || return 1
  [[ "$state" != pending && "$state" != running ]]
}
