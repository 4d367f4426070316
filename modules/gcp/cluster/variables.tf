variable "admin_cidrs" {
  description = "CIDR ranges allowed to SSH into the nodes. Default none = no SSH (see `ssh_from_iap`)."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.admin_cidrs : can(cidrnetmask(c))]) && !contains(var.admin_cidrs, "0.0.0.0/0")
    error_message = "admin_cidrs must hold IPv4 CIDR ranges such as \"203.0.113.7/32\", never \"0.0.0.0/0\"; fix or remove the bad entry."
  }
}

variable "backups" {
  description = "Scheduled `pg_dump` backups of the stack's own PostgreSQL (Airflow's metadata database, on a manager's local volume) to a Cloud Storage bucket of their own (`<project_id>-airtasks-<cluster_name>-backups` in `region`; uniform bucket-level access, public access prevented), under `backups/`, and a restore from the newest one when PostgreSQL comes up empty (a replaced manager). Not the log bucket: every node may read that one, and a dump holds the database's connection secrets; only the managers may write, list and read this one. `every_minutes`: how often a dump is taken (5 to 1440, default 60); `retention_days`: dumps under `backups/` older than this are deleted by a lifecycle rule (1 to 3650, default 14); `force_destroy`: let `terraform destroy` delete the bucket with the dumps in it (off: destroy stops at a bucket that still holds dumps). On by default; skipped with `database.managed = true` (Cloud SQL keeps its own backups). `null` = no backups, no bucket."
  type = object({
    every_minutes  = optional(number, 60)
    retention_days = optional(number, 14)
    force_destroy  = optional(bool, false)
  })
  default = {}

  validation {
    condition     = var.backups == null ? true : (floor(var.backups.every_minutes) == var.backups.every_minutes && var.backups.every_minutes >= 5 && var.backups.every_minutes <= 1440)
    error_message = "backups.every_minutes must be a whole number of minutes from 5 to 1440 (once a day), e.g. 60, or set backups = null to take no backups."
  }

  validation {
    condition     = var.backups == null ? true : (floor(var.backups.retention_days) == var.backups.retention_days && var.backups.retention_days >= 1 && var.backups.retention_days <= 3650)
    error_message = "backups.retention_days must be a whole number of days from 1 to 3650 (e.g. 14), or set backups = null to take no backups."
  }
}

variable "cluster_name" {
  description = "Name of the cluster; every resource is named `airtasks-<cluster_name>...`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}[a-z0-9]$", var.cluster_name))
    error_message = "cluster_name must match ^[a-z][a-z0-9-]{1,20}[a-z0-9]$ (3-22 lowercase letters, digits, dashes; e.g. \"demo\")."
  }
}

variable "dag_bundles" {
  description = "Your DAGs, besides the image's own folder (`dags-folder`: the examples and the scaler DAG, always kept): a list of Airflow DAG bundles (see docs/dag-bundles.md). Each has a `name` and exactly one of `git` (`url`: https://, ssh:// or git@host:path; `ref`: branch or tag, default \"main\"; `subdir`: the DAGs' folder in the repository, null = its root; `refresh_seconds`: how often the repository is fetched, default 60; `credential`: the id of a Secret Manager secret holding a token or deploy key for a private repository, never the secret itself) or `bucket` (`prefix`: a folder of the cluster's DAG bucket such as \"shared/\", which you upload to; `refresh_seconds`: how often it is synced, default 60). `[]` (the default) = only the image's DAGs."
  type = list(object({
    name = string
    git = optional(object({
      url             = string
      ref             = optional(string, "main")
      subdir          = optional(string)
      refresh_seconds = optional(number, 60)
      credential      = optional(string)
    }))
    bucket = optional(object({
      prefix          = string
      refresh_seconds = optional(number, 60)
    }))
  }))
  default  = []
  nullable = false

  # Validated once, in modules/dag-bundles, for both clouds.
}

variable "database" {
  description = "Airflow's metadata database as Cloud SQL for PostgreSQL instead of the stack's `postgres` service on a manager (see docs/high-availability.md). `managed = true` turns it on: a private IP in the cluster's VPC (private services access; the project needs the sqladmin and servicenetworking APIs), no public IP, TLS only. `tier` (default \"db-custom-2-7680\": 2 vCPUs, 7.5 GB), `disk_size` (GB, 10 to 65536, default 20, SSD; Cloud SQL grows it), `multi_az` (`REGIONAL` availability: a standby in a second zone, default false), `backup_retention_days` (daily backups kept, 1 to 365, default 7; point-in-time recovery on), `deletion_protection` (default true, in Terraform and in Cloud SQL; a final backup is taken on delete either way and kept 365 days), `engine_version` (PostgreSQL major 13 to 17, default \"16\"), `password_version` (default 1; raise it to have the next apply set a new password). Terraform generates the password and writes it, write-only, to the user and to a Secret Manager secret: never in the plan or the state. Only the cluster's nodes may read that secret. `null` (the default) or `managed = false` = the stack's own PostgreSQL."
  type = object({
    managed               = optional(bool, false)
    tier                  = optional(string, "db-custom-2-7680")
    disk_size             = optional(number, 20)
    multi_az              = optional(bool, false)
    backup_retention_days = optional(number, 7)
    deletion_protection   = optional(bool, true)
    engine_version        = optional(string, "16")
    password_version      = optional(number, 1)
  })
  default = null

  validation {
    condition     = var.database == null ? true : can(regex("^db-(custom-[0-9]+-[0-9]+|g1-small|f1-micro|perf-optimized-N-[0-9]+)$", var.database.tier))
    error_message = "database.tier must be a Cloud SQL for PostgreSQL tier: db-custom-<vCPUs>-<memory MB> such as \"db-custom-2-7680\", db-g1-small, db-f1-micro, or db-perf-optimized-N-<vCPUs> (Enterprise Plus)."
  }

  validation {
    condition     = var.database == null ? true : (floor(var.database.disk_size) == var.database.disk_size && var.database.disk_size >= 10 && var.database.disk_size <= 65536)
    error_message = "database.disk_size must be a whole number of GB from 10 to 65536 (Cloud SQL's SSD minimum is 10), e.g. 20; Cloud SQL grows the disk from there."
  }

  validation {
    condition     = var.database == null ? true : (floor(var.database.backup_retention_days) == var.database.backup_retention_days && var.database.backup_retention_days >= 1 && var.database.backup_retention_days <= 365)
    error_message = "database.backup_retention_days must be a whole number of daily backups to keep from 1 to 365 (Cloud SQL's range; backups cannot be turned off here), e.g. 7."
  }

  validation {
    condition     = var.database == null ? true : can(regex("^1[3-7]$", var.database.engine_version))
    error_message = "database.engine_version must be a PostgreSQL major version Airflow 3 supports, 13 to 17, such as \"16\" (Cloud SQL picks the minor version; \"16.4\" will not do)."
  }

  validation {
    condition     = var.database == null ? true : (floor(var.database.password_version) == var.database.password_version && var.database.password_version >= 1)
    error_message = "database.password_version must be a whole number from 1 up, e.g. 1; raise it by one to have terraform apply set a new password."
  }
}

variable "image" {
  description = "Boot image of every VM (image family or path). `null` = Debian 12 (`debian-cloud/debian-12`); Docker is installed at boot if absent."
  type        = string
  default     = null

  validation {
    condition     = var.image == null || can(regex("^[a-z0-9][a-z0-9/._-]*$", var.image))
    error_message = "image must be an image family or path such as \"debian-cloud/debian-12\" or \"projects/my-project/global/images/airtasks-1\", or null."
  }
}

variable "manager_count" {
  description = "How many Swarm managers: `1`, `3` or `5`, spread over `zones`. 3 keep the Swarm, Airflow's control plane and the scaler running when one manager is lost (5: two); a lost VM is recreated by the next `terraform apply` and rejoins."
  type        = number
  default     = 1
  nullable    = false

  validation {
    condition     = contains([1, 3, 5], var.manager_count)
    error_message = "manager_count must be 1, 3 or 5 (an odd number keeps a Raft quorum: 3 survive the loss of one manager, 5 of two); set manager_count = 3 for high availability."
  }
}

variable "manager_machine_type" {
  description = "Machine type of the manager VM (Airflow, PostgreSQL, RabbitMQ, the scaler)."
  type        = string
  default     = "e2-standard-4"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*-[a-z0-9-]+$", var.manager_machine_type))
    error_message = "manager_machine_type must be a GCE machine type such as \"e2-standard-4\"."
  }
}

variable "project_id" {
  description = "GCP project id to deploy into (the project id, not its number)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id (6-30 lowercase letters, digits, dashes), e.g. \"my-project-123\"."
  }
}

variable "queues" {
  description = "One autoscaled worker group (regional MIG) per Celery queue, keyed by queue name: `machine_type`, `min_size`, `max_size`, `slots_per_node` (tasks a VM runs at once), `spot` (Spot VMs), `prescale` (default true: raise the group one boot before a scheduled DAG run that needed it), `pack` (default false: steer new tasks onto the fullest busy nodes, so the others empty and go sooner: fewer node-hours for more cordon calls), `learn_durations` (default false: start nodes only for the queued tasks that the busy nodes would not start within a boot, by each task's recent run times in Airflow)."
  type = map(object({
    machine_type    = string
    min_size        = number
    max_size        = number
    slots_per_node  = number
    spot            = optional(bool, false)
    prescale        = optional(bool, true)
    pack            = optional(bool, false)
    learn_durations = optional(bool, false)
  }))
  nullable = false

  validation {
    condition     = length(var.queues) > 0
    error_message = "queues must define at least one queue, e.g. { default = { machine_type = \"e2-standard-4\", min_size = 0, max_size = 10, slots_per_node = 4 } }."
  }

  validation {
    condition     = alltrue([for q in keys(var.queues) : can(regex("^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$", q))])
    error_message = "queues keys must be queue names matching ^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$ (lowercase letter first, letters, digits, dashes, no dash at the end), e.g. \"default\"."
  }

  validation {
    condition     = !contains(keys(var.queues), "manager")
    error_message = "queues must not have a \"manager\" key: the manager VM serves that queue; rename the queue."
  }

  validation {
    condition     = alltrue([for q in values(var.queues) : can(regex("^[a-z][a-z0-9]*-[a-z0-9-]+$", q.machine_type))])
    error_message = "queues.<name>.machine_type must be a GCE machine type such as \"e2-standard-4\"."
  }

  validation {
    condition     = alltrue([for q in values(var.queues) : q.min_size >= 0 && floor(q.min_size) == q.min_size])
    error_message = "queues.<name>.min_size must be a whole number >= 0."
  }

  validation {
    condition     = alltrue([for q in values(var.queues) : q.max_size >= 1 && floor(q.max_size) == q.max_size])
    error_message = "queues.<name>.max_size must be a whole number >= 1 (a root may cap it lower)."
  }

  validation {
    condition     = alltrue([for q in values(var.queues) : q.min_size <= q.max_size])
    error_message = "queues.<name>.min_size must not exceed max_size: lower min_size or raise max_size."
  }

  validation {
    condition     = alltrue([for q in values(var.queues) : q.slots_per_node >= 1 && floor(q.slots_per_node) == q.slots_per_node])
    error_message = "queues.<name>.slots_per_node must be a whole number >= 1 (the tasks one VM runs at once)."
  }
}

variable "region" {
  description = "GCP region of the cluster."
  type        = string
  default     = "europe-west1"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region such as \"europe-west1\" (not a zone like \"europe-west1-b\")."
  }
}

variable "scaler" {
  description = "Scaler settings printed in `scaler_config`: `interval_seconds`, `stabilization_seconds`, `idle_seconds`, `airflow_url`, `rabbitmq_url` (`\"\"` = no broker source), `rabbitmq_vhost`. URLs default to the stack's services."
  type = object({
    interval_seconds      = optional(number, 5)
    stabilization_seconds = optional(number, 30)
    idle_seconds          = optional(number, 10)
    airflow_url           = optional(string, "http://airflow-apiserver:8080")
    rabbitmq_url          = optional(string, "http://rabbitmq:15672/rabbitmq")
    rabbitmq_vhost        = optional(string, "/")
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.scaler.interval_seconds >= 1 && var.scaler.stabilization_seconds >= 0 && var.scaler.idle_seconds >= 0
    error_message = "scaler.interval_seconds must be >= 1, scaler.stabilization_seconds and scaler.idle_seconds >= 0."
  }

  validation {
    condition     = can(regex("^https?://", var.scaler.airflow_url)) && (var.scaler.rabbitmq_url == "" || can(regex("^https?://", var.scaler.rabbitmq_url)))
    error_message = "scaler.airflow_url must be an http(s) URL; scaler.rabbitmq_url an http(s) URL of the management API, or \"\" for none."
  }
}

variable "ssh_from_iap" {
  description = "Allow SSH from Google's IAP range, for `gcloud compute ssh --tunnel-through-iap` (workers have no public IP)."
  type        = bool
  default     = false
  nullable    = false
}

variable "stack" {
  description = "The Air-Tasks stack the manager deploys at boot (`image`: the Air-Tasks image; optional `name`, `postgres_image`/`rabbitmq_image`/`proxy_image` instead of the official images, `compose_override`: a compose file deployed on top, `tls_hostnames` for the self-signed certificate). The module adds the queues, `scaler_config`, the task logs location (`task_logs`) and where the database's backups go (`backups`). `null` = build the Swarm only, deploy the stack yourself."
  type = object({
    image            = string
    name             = optional(string, "airtasks")
    postgres_image   = optional(string)
    rabbitmq_image   = optional(string)
    proxy_image      = optional(string)
    compose_override = optional(string)
    tls_hostnames    = optional(list(string), [])
  })
  default = null

  validation {
    condition     = var.stack == null || can(regex("^[A-Za-z0-9][A-Za-z0-9._/:@-]*$", var.stack.image))
    error_message = "stack.image must be an image reference such as \"ghcr.io/acme/airtasks:1.0\" (no spaces or quotes), or set stack = null."
  }
}

variable "subnet_cidr" {
  description = "IPv4 range of the cluster's subnet (Swarm ports are open only inside it)."
  type        = string
  default     = "10.20.0.0/20"
  nullable    = false

  validation {
    condition     = can(cidrnetmask(var.subnet_cidr)) && try(tonumber(split("/", var.subnet_cidr)[1]) <= 26, false)
    error_message = "subnet_cidr must be an IPv4 CIDR range of /26 or larger, such as \"10.20.0.0/20\"."
  }
}

variable "task_logs" {
  description = "Remote task logs in a Cloud Storage bucket of the cluster's own (`<project_id>-airtasks-<cluster_name>-logs` in `region`; uniform bucket-level access, public access prevented), under the prefix `logs/`, so a log outlives the node that ran its task. `retention_days`: objects under `logs/` older than this are deleted (a lifecycle rule); `force_destroy`: let `terraform destroy` delete the bucket with the logs in it (off: destroy stops at a bucket that still holds logs). `null` = no bucket: logs stay on the worker node and are lost with it."
  type = object({
    retention_days = optional(number, 30)
    force_destroy  = optional(bool, false)
  })
  default = {}

  validation {
    condition     = var.task_logs == null ? true : (floor(var.task_logs.retention_days) == var.task_logs.retention_days && var.task_logs.retention_days >= 1 && var.task_logs.retention_days <= 3650)
    error_message = "task_logs.retention_days must be a whole number of days from 1 to 3650 (e.g. 30), or set task_logs = null to keep logs on the nodes."
  }
}

variable "web_cidrs" {
  description = "CIDR ranges allowed to reach the manager's HTTPS proxy (Airflow UI, Flower). Default none."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.web_cidrs : can(cidrnetmask(c))])
    error_message = "web_cidrs must hold IPv4 CIDR ranges such as \"198.51.100.0/24\"; fix or remove the bad entry."
  }
}

variable "zones" {
  description = "Zones of `region` for the worker MIGs (two or more); the first manager goes in the first. Default `[]` = every zone of the region that is UP at the first apply, pinned in state (later plans never move a VM when a zone goes down or Google adds one)."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = length(var.zones) == 0 || (length(distinct(var.zones)) >= 2 && alltrue([for z in var.zones : can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", z))]))
    error_message = "zones must be empty (all zones of region) or list two or more zones such as \"europe-west1-b\"."
  }
}
