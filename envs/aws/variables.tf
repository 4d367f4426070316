variable "admin_cidrs" {
  description = "CIDR blocks allowed to SSH (22/tcp) into the nodes. Empty (the default) = no SSH."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "ami_id" {
  description = "AMI for all nodes. `null` = the latest Ubuntu 22.04 LTS (amd64) from Canonical, looked up in the region."
  type        = string
  default     = null
}

variable "cluster_name" {
  description = "Name of the cluster: prefixes every resource (`airtasks-<cluster>-...`) and the SSM parameters (`/airtasks/<cluster>/...`)."
  type        = string
}

variable "key_name" {
  description = "EC2 key pair for SSH into the nodes (needs `admin_cidrs` too). `null` = no key."
  type        = string
  default     = null
}

variable "manager_count" {
  description = "How many Swarm managers: `1`, `3` or `5`. 3 keep the Swarm, Airflow's control plane and the scaler running when one manager is lost (5: two); the managers are an Auto Scaling group of that size, so a lost one is replaced and rejoins."
  type        = number
  default     = 1
  nullable    = false
}

variable "manager_instance_type" {
  description = "EC2 instance type of the manager (Airflow, PostgreSQL, RabbitMQ, the scaler)."
  type        = string
  default     = "t3.large"
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

  # This deployment's own cap (modules/aws/cluster checks the rest; envs/local caps lower).
  validation {
    condition     = alltrue([for q in values(var.queues) : q.max_size <= 100])
    error_message = "queues: max_size must be 100 or less per queue (a sanity cap against typos); split the queue or raise the cap in envs/aws/variables.tf."
  }
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"
}

variable "scaler" {
  description = "Scaler settings printed in `scaler_config`: pass interval, group stabilisation window, per-node idle time (all seconds), and the load sources' URLs (default: the stack's internal service names)."
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
}

variable "stack" {
  description = "The Air-Tasks stack the manager deploys at boot (`image`: the Air-Tasks image; optional `name`, `postgres_image`/`rabbitmq_image`/`proxy_image` instead of the official images, `compose_override`: a compose file deployed on top, `tls_hostnames` for the self-signed certificate). The manager renders it for `queues` and gives the scaler `scaler_config`. `null` = build the Swarm only, deploy the stack yourself."
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
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC (/16 to /24)."
  type        = string
  default     = "10.20.0.0/16"
}

variable "web_cidrs" {
  description = "CIDR blocks allowed to reach the UI (HTTPS on the manager). Empty (the default) = not reachable from outside the VPC."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "task_logs" {
  description = "Task logs in an S3 bucket of the cluster's own, under `logs/` (see docs/task-logs.md): `retention_days` (default 30) before they expire, `force_destroy` to let `terraform destroy` delete a bucket that still holds logs. `null` = logs stay on the worker nodes and are lost with them."
  type = object({
    retention_days = optional(number, 30)
    force_destroy  = optional(bool, false)
  })
  default = {}
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
}

variable "database" {
  description = "Airflow's metadata database as Amazon RDS for PostgreSQL instead of the stack's own `postgres` service: `{ managed = true }` plus optional `instance_class`, `allocated_storage`, `multi_az`, `backup_retention_days`, `deletion_protection`, `engine_version` (modules/aws/cluster checks them; see docs/high-availability.md). Needs `private_subnets = true`. `null` (the default) = the stack's own PostgreSQL."
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
}

variable "backups" {
  description = "Scheduled `pg_dump` backups of the stack's own PostgreSQL to the cluster's bucket, under `backups/`, and a restore from the newest one when PostgreSQL comes up empty (see docs/configuration.md): `every_minutes` (5 to 1440, default 60), `retention_days` (1 to 3650, default 14) before a dump expires. Only the managers may read the dumps (they hold connection secrets). On by default; skipped with `database.managed = true`. `null` = no backups."
  type = object({
    every_minutes  = optional(number, 60)
    retention_days = optional(number, 14)
  })
  default = {}
}
