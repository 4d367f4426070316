variable "admin_cidrs" {
  description = "CIDR blocks allowed to SSH (22/tcp) into the nodes. Empty (the default) = no SSH."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.admin_cidrs : can(cidrhost(c, 0)) && strcontains(c, "/")])
    error_message = "admin_cidrs must be CIDR blocks such as \"203.0.113.7/32\"; use [] for no SSH."
  }
}

variable "ami_id" {
  description = "AMI for all nodes. `null` = the newest Canonical Ubuntu image matching `ami_name_pattern` (amd64), looked up in the region."
  type        = string
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]{8,17}$", coalesce(var.ami_id, "x")))
    error_message = "ami_id must be an AMI id such as \"ami-0123456789abcdef0\", or null to look up Ubuntu 22.04."
  }
}

variable "ami_name_pattern" {
  description = "Name filter of the Canonical image looked up when `ami_id` is null (default: Ubuntu 22.04 LTS)."
  type        = string
  default     = "ubuntu/images/hvm-ssd*/ubuntu-jammy-22.04-amd64-server-*"
  nullable    = false

  validation {
    condition     = length(trimspace(var.ami_name_pattern)) > 0
    error_message = "ami_name_pattern must be an image name filter such as \"ubuntu/images/hvm-ssd*/ubuntu-jammy-22.04-amd64-server-*\"."
  }
}

variable "cluster_name" {
  description = "Name of the cluster: prefixes every resource (`airtasks-<cluster>-...`) and the SSM parameters (`/airtasks/<cluster>/...`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}[a-z0-9]$", var.cluster_name))
    error_message = "cluster_name must match ^[a-z][a-z0-9-]{1,20}[a-z0-9]$ (3-22 lowercase letters, digits, dashes, not ending in a dash; e.g. \"demo\")."
  }
}

variable "elastic_ip" {
  description = "Give the first manager an Elastic IP, so its public address (the web URL) survives stop/start."
  type        = bool
  default     = true
  nullable    = false
}

variable "key_name" {
  description = "EC2 key pair for SSH into the nodes (needs `admin_cidrs` too). `null` = no key."
  type        = string
  default     = null

  validation {
    condition     = var.key_name == null || length(trimspace(coalesce(var.key_name, "x"))) > 0
    error_message = "key_name must be the name of an EC2 key pair, or null for no key."
  }
}

variable "manager_count" {
  description = "How many Swarm managers: `1`, `3` or `5`. 3 keep the Swarm, Airflow's control plane and the scaler running when one manager is lost (5: two); the managers are an Auto Scaling group of that size, so a lost one is replaced and rejoins."
  type        = number
  default     = 1
  nullable    = false

  validation {
    condition     = contains([1, 3, 5], var.manager_count)
    error_message = "manager_count must be 1, 3 or 5 (an odd number keeps a Raft quorum: 3 survive the loss of one manager, 5 of two); set manager_count = 3 for high availability."
  }
}

variable "manager_instance_type" {
  description = "EC2 instance type of the manager (Airflow, PostgreSQL, RabbitMQ, the scaler)."
  type        = string
  default     = "t3.large"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.manager_instance_type))
    error_message = "manager_instance_type must be an EC2 instance type such as \"t3.large\"."
  }
}

variable "manager_root_volume_size" {
  description = "Size of each manager's encrypted gp3 root volume in GiB (images, PostgreSQL, logs)."
  type        = number
  default     = 40
  nullable    = false

  validation {
    condition     = var.manager_root_volume_size >= 8 && var.manager_root_volume_size <= 16384
    error_message = "manager_root_volume_size must be between 8 and 16384 GiB."
  }
}

variable "private_subnets" {
  description = "Put the workers in private subnets behind a NAT gateway (costs a NAT gateway). `false` = public subnets."
  type        = bool
  default     = false
  nullable    = false
}

variable "queues" {
  description = "One worker group per Celery queue, keyed by queue name: instance types (preferred first), min/max size, task slots per node (the worker's concurrency), optional spot, `prescale` (default true: raise the group one boot before a scheduled DAG run that needed it), `pack` (default false: steer new tasks onto the fullest busy nodes, so the others empty and go sooner: fewer node-hours for more cordon calls) and `learn_durations` (default false: start nodes only for the queued tasks that the busy nodes would not start within a boot, by each task's recent run times in Airflow)."
  type = map(object({
    instance_types  = list(string)
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
    error_message = "queues must define at least one queue, e.g. { default = { instance_types = [\"t3.large\"], min_size = 0, max_size = 10, slots_per_node = 4 } }."
  }

  validation {
    condition     = alltrue([for q in keys(var.queues) : can(regex("^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$", q))])
    error_message = "queues keys must be valid queue names: ^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$ (lowercase letter first, then lowercase letters, digits, dashes; no dots or underscores), e.g. \"default\" or \"gpu-heavy\"."
  }

  validation {
    condition     = !contains(keys(var.queues), "manager")
    error_message = "queues must not define \"manager\": that queue is reserved for the manager node; rename the queue."
  }

  validation {
    condition     = alltrue([for q in values(var.queues) : length(q.instance_types) > 0])
    error_message = "queues: every queue needs at least one entry in instance_types, e.g. instance_types = [\"t3.large\"]."
  }

  validation {
    condition     = alltrue([for q in values(var.queues) : q.min_size >= 0 && q.min_size <= q.max_size])
    error_message = "queues: min_size must be between 0 and max_size for every queue; lower min_size or raise max_size."
  }

  validation {
    condition     = alltrue([for q in values(var.queues) : q.slots_per_node >= 1 && floor(q.slots_per_node) == q.slots_per_node])
    error_message = "queues: slots_per_node must be a whole number of 1 or more (the Celery concurrency of one node)."
  }
}

variable "region" {
  description = "AWS region the provider deploys into (the caller's provider block sets it; printed in `scaler_config`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as \"eu-west-1\"."
  }
}

variable "scaler" {
  description = "Scaler settings printed in `scaler_config`: pass interval, group stabilisation window, per-node idle time (all seconds), and the load sources' URLs (default: the stack's internal service names; `rabbitmq_url = \"\"` = no broker source)."
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
    error_message = "scaler: interval_seconds must be 1 or more, stabilization_seconds and idle_seconds 0 or more."
  }

  validation {
    condition     = can(regex("^https?://[^/\\s]+", var.scaler.airflow_url)) && (var.scaler.rabbitmq_url == "" || can(regex("^https?://[^/\\s]+", var.scaler.rabbitmq_url)))
    error_message = "scaler: airflow_url and rabbitmq_url must be http(s) URLs such as \"http://airflow-apiserver:8080\"."
  }
}

variable "stack" {
  description = "The Air-Tasks stack the manager deploys at boot (`image`: the Air-Tasks image; optional `name`, `postgres_image`/`rabbitmq_image`/`proxy_image` instead of the official images, `compose_override`: a compose file deployed on top, `tls_hostnames` for the self-signed certificate). The module adds the queues and `scaler_config`. `null` = build the Swarm only, deploy the stack yourself."
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
    condition     = var.stack == null ? true : can(regex("^[A-Za-z0-9][A-Za-z0-9._/:@-]*$", var.stack.image))
    error_message = "stack.image must be an image reference such as \"ghcr.io/acme/airtasks:1.0\" (no spaces or quotes), or set stack = null."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for k in keys(var.tags) : !startswith(k, "airtasks:")])
    error_message = "tags must not set airtasks:* keys: the modules set those (the scaler's IAM conditions rely on them)."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC (/16 to /24)."
  type        = string
  default     = "10.20.0.0/16"
  nullable    = false

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && can(regex("/(1[6-9]|2[0-4])$", var.vpc_cidr))
    error_message = "vpc_cidr must be an IPv4 CIDR block from /16 to /24, such as \"10.20.0.0/16\"."
  }
}

variable "web_cidrs" {
  description = "CIDR blocks allowed to reach the UI (HTTPS on the manager). Empty (the default) = not reachable from outside the VPC."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.web_cidrs : can(cidrhost(c, 0)) && strcontains(c, "/")])
    error_message = "web_cidrs must be CIDR blocks such as \"203.0.113.0/24\" (\"0.0.0.0/0\" for everyone)."
  }
}

variable "worker_root_volume_size" {
  description = "Size of each worker's encrypted gp3 root volume in GiB."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.worker_root_volume_size >= 8 && var.worker_root_volume_size <= 16384
    error_message = "worker_root_volume_size must be between 8 and 16384 GiB."
  }
}

variable "task_logs" {
  description = "Task logs in an S3 bucket of the cluster's own (SSE, versioned, public access blocked, TLS only), under `logs/`, so a log outlives the node that ran its task. `retention_days`: objects (and earlier versions) under `logs/` expire after this many days; `force_destroy`: let `terraform destroy` delete the bucket with the logs in it (off: destroy stops at a bucket that still holds logs); `deny_insecure_transport`: the bucket policy that refuses requests without TLS (turn off only for a local S3 API without TLS, as envs/local does). `null` = no bucket; logs stay on the nodes and are lost with them."
  type = object({
    retention_days          = optional(number, 30)
    force_destroy           = optional(bool, false)
    deny_insecure_transport = optional(bool, true)
  })
  default = {}

  validation {
    condition     = var.task_logs == null ? true : (floor(var.task_logs.retention_days) == var.task_logs.retention_days && var.task_logs.retention_days >= 1 && var.task_logs.retention_days <= 3650)
    error_message = "task_logs.retention_days must be a whole number of days from 1 to 3650 (e.g. 30), or set task_logs = null to keep logs on the nodes."
  }
}

variable "dag_bundles" {
  description = "Your DAGs, besides the image's own folder (`dags-folder`: the examples and the scaler DAG, always kept): a list of Airflow DAG bundles (see docs/dag-bundles.md). Each has a `name` and exactly one of `git` (`url`: https://, ssh:// or git@host:path; `ref`: branch or tag, default \"main\"; `subdir`: the DAGs' folder in the repository, null = its root; `refresh_seconds`: how often the repository is fetched, default 60; `credential`: the name of an SSM SecureString parameter holding a token or deploy key for a private repository, never the secret itself) or `bucket` (`prefix`: a folder of the cluster's bucket such as \"shared/\", which you upload to; `refresh_seconds`: how often it is synced, default 60). `[]` (the default) = only the image's DAGs."
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
  description = "Airflow's metadata database as Amazon RDS for PostgreSQL instead of the stack's `postgres` service on a manager (see docs/high-availability.md). `managed = true` turns it on (it needs `private_subnets = true`: the instance goes into the private subnets); `instance_class` (default \"db.t4g.medium\"), `allocated_storage` (GiB, 20 or more, default 20, encrypted gp3), `multi_az` (a standby in a second zone, default false), `backup_retention_days` (1 to 35, default 7), `deletion_protection` (default true; a final snapshot `airtasks-<cluster>-final` is taken on delete either way), `engine_version` (PostgreSQL major 13 to 17 or a full version, default \"16\"). RDS keeps the password in Secrets Manager; only the cluster's nodes may read that secret and reach port 5432. `null` (the default) or `managed = false` = the stack's own PostgreSQL."
  type = object({
    managed               = optional(bool, false)
    instance_class        = optional(string, "db.t4g.medium")
    allocated_storage     = optional(number, 20)
    multi_az              = optional(bool, false)
    backup_retention_days = optional(number, 7)
    deletion_protection   = optional(bool, true)
    engine_version        = optional(string, "16")
  })
  default = null

  validation {
    condition     = var.database == null ? true : can(regex("^db\\.[a-z0-9]+\\.[a-z0-9]+$", var.database.instance_class))
    error_message = "database.instance_class must be an RDS instance class such as \"db.t4g.medium\" (starting with db.)."
  }

  validation {
    condition     = var.database == null ? true : (floor(var.database.allocated_storage) == var.database.allocated_storage && var.database.allocated_storage >= 20 && var.database.allocated_storage <= 65536)
    error_message = "database.allocated_storage must be a whole number of GiB from 20 to 65536 (gp3's minimum is 20), e.g. 20."
  }

  validation {
    condition     = var.database == null ? true : (floor(var.database.backup_retention_days) == var.database.backup_retention_days && var.database.backup_retention_days >= 1 && var.database.backup_retention_days <= 35)
    error_message = "database.backup_retention_days must be a whole number of days from 1 to 35 (RDS's range; 0 would turn backups off), e.g. 7."
  }

  validation {
    condition     = var.database == null ? true : can(regex("^1[3-7](\\.[0-9]+)?$", var.database.engine_version))
    error_message = "database.engine_version must be a PostgreSQL version Airflow 3 supports, 13 to 17, as a major (\"16\") or a full version (\"16.4\")."
  }

  validation {
    condition     = try(var.database.managed, false) != true || var.private_subnets
    error_message = "database.managed needs private_subnets = true: the database goes into the cluster's private subnets; set private_subnets = true."
  }
}

variable "backups" {
  description = "Scheduled `pg_dump` backups of the stack's own PostgreSQL (Airflow's metadata database, on a manager's local volume) to the cluster's bucket under `backups/`, and a restore from the newest one when PostgreSQL comes up empty (a replaced manager). `every_minutes`: how often a dump is taken (5 to 1440, default 60); `retention_days`: dumps (and earlier versions) under `backups/` expire after this many days (1 to 3650, default 14). Only the managers may write and read the dumps: they hold the database's connection secrets. On by default; skipped with `database.managed = true` (RDS keeps its own backups). `null` = no backups."
  type = object({
    every_minutes  = optional(number, 60)
    retention_days = optional(number, 14)
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
