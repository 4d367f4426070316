################################################################################
# Where the node runs
################################################################################

variable "cloud" {
  description = "Cloud the node runs on: `aws` (IMDSv2 + SSM Parameter Store) or `gcp` (metadata server + Secret Manager)."
  type        = string

  validation {
    condition     = contains(["aws", "gcp"], var.cloud)
    error_message = "cloud must be \"aws\" or \"gcp\"."
  }
}

variable "role" {
  description = "Swarm role of the node: `manager` (inits the Swarm, publishes join info) or `worker` (waits for it, joins)."
  type        = string

  validation {
    condition     = contains(["manager", "worker"], var.role)
    error_message = "role must be \"manager\" or \"worker\"."
  }
}

variable "cluster_name" {
  description = "Cluster name; becomes the `airtasks.cluster` engine label."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}[a-z0-9]$", var.cluster_name))
    error_message = "cluster_name must match ^[a-z][a-z0-9-]{1,20}[a-z0-9]$ (3-22 lowercase letters, digits, dashes; e.g. \"demo\")."
  }
}

variable "queue" {
  description = "Celery queue the worker serves (`airtasks.queue` engine label). Required for `role = \"worker\"`, ignored for the manager."
  type        = string
  default     = null

  validation {
    condition     = var.queue == null || can(regex("^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$", var.queue))
    error_message = "queue must match ^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$ (lowercase letter first, then letters, digits, dashes)."
  }
}

variable "region" {
  description = "AWS region of the SSM parameters. `null` = the instance's own region, read from IMDS. Ignored on GCP."
  type        = string
  default     = null

  validation {
    condition     = var.region == null || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must look like an AWS region, e.g. \"eu-west-1\", or be null."
  }
}

variable "project_id" {
  description = "GCP project holding the secrets. `null` = the instance's own project, read from the metadata server. Ignored on AWS."
  type        = string
  default     = null

  validation {
    condition     = var.project_id == null || can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id (6-30 lowercase letters, digits, dashes), or null."
  }
}

################################################################################
# Where the join information lives
################################################################################

variable "worker_token_ref" {
  description = "Where the Swarm worker join token lives: SSM parameter name (aws, e.g. `/airtasks/demo/swarm/worker-token`) or Secret Manager secret id (gcp)."
  type        = string

  validation {
    condition     = can(regex("^(/[A-Za-z0-9_.-]+)+$|^[A-Za-z0-9_-]{1,255}$", var.worker_token_ref))
    error_message = "worker_token_ref must be an SSM parameter name starting with \"/\" or a Secret Manager secret id (letters, digits, _ and -)."
  }
}

variable "manager_token_ref" {
  description = "Where the Swarm manager join token lives (SSM parameter name or secret id). Required for the manager, which writes it; workers never see it."
  type        = string
  default     = null

  validation {
    condition     = var.manager_token_ref == null || can(regex("^(/[A-Za-z0-9_.-]+)+$|^[A-Za-z0-9_-]{1,255}$", var.manager_token_ref))
    error_message = "manager_token_ref must be an SSM parameter name starting with \"/\" or a Secret Manager secret id (letters, digits, _ and -)."
  }
}

variable "manager_address_ref" {
  description = "Where the manager's Swarm address (`<private ip>:2377`) lives (SSM parameter name or secret id)."
  type        = string

  validation {
    condition     = can(regex("^(/[A-Za-z0-9_.-]+)+$|^[A-Za-z0-9_-]{1,255}$", var.manager_address_ref))
    error_message = "manager_address_ref must be an SSM parameter name starting with \"/\" or a Secret Manager secret id (letters, digits, _ and -)."
  }
}

variable "placeholder" {
  description = "Value the parameters hold before the manager publishes the real one (Terraform creates them with it); read as \"not there yet\"."
  type        = string
  default     = "airtasks:pending"

  validation {
    condition     = can(regex("^[A-Za-z0-9:._-]{1,64}$", var.placeholder))
    error_message = "placeholder must be 1-64 characters of letters, digits and :._- (e.g. \"airtasks:pending\")."
  }
}

################################################################################
# What the node does
################################################################################

variable "labels" {
  description = "Extra Docker engine labels (`key = value`) on top of `airtasks.role`, `airtasks.cluster` and `airtasks.queue`."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      for k, v in var.labels : can(regex("^[a-z0-9][a-z0-9._-]*$", k)) && can(regex("^[A-Za-z0-9._/:-]*$", v))
    ])
    error_message = "labels keys must match ^[a-z0-9][a-z0-9._-]*$ and values ^[A-Za-z0-9._/:-]*$ (no spaces or quotes)."
  }
}

variable "spot" {
  description = "Worker only: the node runs on spot (AWS) or Spot/preemptible (GCP) capacity. `true` installs the interruption watcher (systemd unit `airtasks-spot-watcher`): on the notice it cancels the node's Celery consumer and sets the engine label `airtasks.interrupted=<deadline epoch>`. On-demand nodes do not get it."
  type        = bool
  default     = false
  nullable    = false
}

variable "manager_count" {
  description = "Manager only: how many managers the Swarm has, `1`, `3` or `5`. With 3 or 5 one initialises the Swarm (AWS: the lowest live manager instance id; GCP: `init_manager`) and the others join as managers; a leader timer keeps the published address on a live manager and removes lost ones."
  type        = number
  default     = 1
  nullable    = false

  validation {
    condition     = contains([1, 3, 5], var.manager_count)
    error_message = "manager_count must be 1, 3 or 5 (an odd number keeps a Raft quorum: 3 survive the loss of one manager, 5 of two); set manager_count = 3 for high availability."
  }
}

variable "init_manager" {
  description = "Manager only, GCP: the instance name of the manager that initialises the Swarm when `manager_count` > 1 (the first manager VM). `null` = this node (AWS ignores it: the lowest live manager instance id initialises)."
  type        = string
  default     = null

  validation {
    condition     = var.init_manager == null || can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", var.init_manager))
    error_message = "init_manager must be a GCE instance name such as \"airtasks-demo-manager-0\", or null."
  }
}

variable "join_timeout_seconds" {
  description = "How long a worker (or a manager that joins) waits (bounded back-off, one log line per try) for the join token and manager address before failing."
  type        = number
  default     = 900

  validation {
    condition     = var.join_timeout_seconds >= 1 && var.join_timeout_seconds <= 7200 && floor(var.join_timeout_seconds) == var.join_timeout_seconds
    error_message = "join_timeout_seconds must be a whole number of seconds between 1 and 7200 (default 900)."
  }
}

variable "docker_install" {
  description = "Install Docker (and the AWS CLI on aws) from the OS package manager when absent. `false` = the image must have them; the script fails clearly otherwise."
  type        = bool
  default     = true
  nullable    = false
}

variable "stack" {
  description = "Manager only: the Air-Tasks stack to deploy once the Swarm is up. `image`: the Air-Tasks image (its `airtasks` CLI renders the stack and creates the secrets); `queues`: worker queue => Celery slots per node (`{}` = the image's default, `default:4`); `queue_max_nodes`: worker queue => its group's maximum size, which sizes the queue's Airflow pool and Airflow's concurrency limits (give it for every queue or for none); `scaler_config`: JSON given to the scaler on the manager (env `AIRTASKS_CONFIG` of `worker-manager`; the `scaler_config` output of an env); `postgres_image`, `rabbitmq_image`, `proxy_image`: instead of the official images; `compose_override`: a compose file (YAML text) deployed on top of the stack; `tls_hostnames`: names for the self-signed certificate besides the node's address; `task_logs`: where Airflow writes task logs (`s3://bucket/prefix` or `gs://bucket/prefix`; null = on the nodes); `dag_bundles`: JSON list of the user's DAG bundles for `airtasks stack render --dag-bundles` (the cluster module's rendering of its `dag_bundles`; null = only the image's DAGs); `database`: JSON of an external PostgreSQL for `airtasks stack render --database` (`host`, `port`, `name`, `user` and `secret_arn`, the secret holding its password, never the password; null = the stack's own `postgres` service); `backups`: JSON for `airtasks stack render --backups` (`url`, `s3://bucket/prefix` or `gs://bucket/prefix`, `every_minutes`, and `region` on AWS), where the `db-backup` service dumps the stack's PostgreSQL and restores it from when it comes up empty (null = no backups). `null` = do not deploy."
  type = object({
    image            = string
    name             = optional(string, "airtasks")
    queues           = optional(map(number), {})
    queue_max_nodes  = optional(map(number), {})
    scaler_config    = optional(string)
    postgres_image   = optional(string)
    rabbitmq_image   = optional(string)
    proxy_image      = optional(string)
    compose_override = optional(string)
    tls_hostnames    = optional(list(string), [])
    task_logs        = optional(string)
    dag_bundles      = optional(string)
    database         = optional(string)
    backups          = optional(string)
  })
  default = null

  validation {
    condition = var.stack == null ? true : alltrue([
      for ref in [var.stack.image, var.stack.postgres_image, var.stack.rabbitmq_image, var.stack.proxy_image] :
      can(regex("^[A-Za-z0-9][A-Za-z0-9._/:@-]*$", ref)) if ref != null
    ])
    error_message = "stack.image (and stack.postgres_image, rabbitmq_image, proxy_image when set) must be image references such as \"ghcr.io/acme/airtasks:1.0\" (no spaces or quotes)."
  }

  validation {
    condition     = var.stack == null ? true : can(regex("^[a-z][a-z0-9_-]{0,30}$", var.stack.name))
    error_message = "stack.name must match ^[a-z][a-z0-9_-]{0,30}$ (default \"airtasks\")."
  }

  validation {
    condition = var.stack == null ? true : alltrue([
      for q, slots in var.stack.queues :
      can(regex("^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$", q)) && q != "manager" && slots >= 1 && slots <= 256 && floor(slots) == slots
    ])
    error_message = "stack.queues must map queue names (^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$, not \"manager\") to whole slot counts 1-256, e.g. { default = 4 }."
  }

  validation {
    condition = var.stack == null ? true : length(var.stack.queue_max_nodes) == 0 || (
      length(setsubtract(keys(var.stack.queues), keys(var.stack.queue_max_nodes))) == 0 &&
      length(setsubtract(keys(var.stack.queue_max_nodes), keys(var.stack.queues))) == 0 &&
      alltrue([for n in values(var.stack.queue_max_nodes) : n >= 0 && n <= 10000 && floor(n) == n])
    )
    error_message = "stack.queue_max_nodes must give every queue of stack.queues, and only those, a whole maximum size from 0 to 10000 (e.g. { default = 10 }), or be {}."
  }

  validation {
    condition     = try(var.stack.scaler_config, null) == null ? true : can(keys(jsondecode(var.stack.scaler_config)))
    error_message = "stack.scaler_config must be a JSON object (e.g. jsonencode(<the env's scaler_config>)), or null."
  }

  validation {
    condition     = try(var.stack.compose_override, null) == null ? true : can(keys(yamldecode(var.stack.compose_override)))
    error_message = "stack.compose_override must be a compose file (a YAML mapping with `services:` ...), or null."
  }

  validation {
    condition     = var.stack == null ? true : alltrue([for h in var.stack.tls_hostnames : can(regex("^[A-Za-z0-9][A-Za-z0-9.:-]*$", h))])
    error_message = "stack.tls_hostnames must be DNS names or IP addresses, e.g. [\"airtasks.example.org\"]."
  }

  validation {
    condition     = try(var.stack.backups, null) == null ? true : can(keys(jsondecode(var.stack.backups)))
    error_message = "stack.backups must be a JSON object (the cluster module's rendering of backups: url, every_minutes, region), or null."
  }

  validation {
    condition     = try(var.stack.dag_bundles, null) == null ? true : can(concat(jsondecode(var.stack.dag_bundles), []))
    error_message = "stack.dag_bundles must be a JSON list (the cluster module's rendering of dag_bundles), or null."
  }
}
