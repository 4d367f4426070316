variable "airflow_port" {
  description = "Port of the local Airflow api-server (`make up`) that `scaler_config.sources.airflow.url` points at."
  type        = number
  default     = 8080

  validation {
    condition     = var.airflow_port >= 1 && var.airflow_port <= 65535 && floor(var.airflow_port) == var.airflow_port
    error_message = "airflow_port must be a TCP port number (1-65535), e.g. 8080."
  }
}

variable "ami_id" {
  description = "AMI for all nodes. `null` = the newest Ubuntu image the local endpoint knows (nothing boots locally)."
  type        = string
  default     = null
}

variable "cluster_name" {
  description = "Name of the local cluster."
  type        = string
  default     = "local"
}

variable "dag_bundles" {
  description = "Your DAGs, besides the image's own folder (`dags-folder`: the examples and the scaler DAG, always kept): a list of Airflow DAG bundles (see docs/dag-bundles.md). Each has a `name` and exactly one of `git` (`url`: https://, ssh:// or git@host:path; `ref`: branch or tag, default \"main\"; `subdir`: the DAGs' folder in the repository, null = its root; `refresh_seconds`: how often the repository is fetched, default 60; `credential`: the name of an SSM SecureString parameter of the local AWS API holding a token or deploy key for a private repository, never the secret itself) or `bucket` (`prefix`: a folder of the cluster's bucket in the local AWS API (moto) such as \"shared/\", which you upload to; `refresh_seconds`: how often it is synced, default 60). `[]` (the default) = only the image's DAGs."
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

variable "manager_count" {
  description = "How many Swarm managers: `1`, `3` or `5`. 3 keep the Swarm, Airflow's control plane and the scaler running when one manager is lost (5: two); the managers are an Auto Scaling group of that size, so a lost one is replaced and rejoins."
  type        = number
  default     = 1
  nullable    = false
}

variable "queues" {
  description = "One worker group per Celery queue (same shape as envs/aws), small by default."
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
  default = {
    default = { instance_types = ["t3.small"], min_size = 0, max_size = 3, slots_per_node = 2 }
  }
  nullable = false

  # This env's own cap (modules/aws/cluster checks the rest).
  validation {
    condition     = alltrue([for q in values(var.queues) : q.max_size <= 20])
    error_message = "queues: max_size must be 20 or less per queue in envs/local (nothing real boots here)."
  }
}

variable "region" {
  description = "Region name used against the local endpoint."
  type        = string
  default     = "us-east-1"
}

variable "scaler" {
  description = "Scaler timings printed in `scaler_config` (seconds)."
  type = object({
    interval_seconds      = optional(number, 5)
    stabilization_seconds = optional(number, 30)
    idle_seconds          = optional(number, 10)
  })
  default  = {}
  nullable = false
}

variable "stack" {
  description = "The Air-Tasks stack the manager deploys at boot, for the cluster in a box (`make up MODE=cluster`, the e2e tests: the manager instance really boots there). `image` and the service images are references the nodes can pull; `compose_override` is a compose file deployed on top (e.g. shorter timings). The queues and `scaler_config` are added from this env. `null` (the default) = nothing boots, Swarm only."
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

variable "task_logs" {
  description = "Task logs in a bucket of the local AWS API (moto), under `logs/`: `retention_days` before they expire, `force_destroy` (here on by default: `make down` removes the bucket with its logs). `null` = logs stay on the nodes."
  type = object({
    retention_days = optional(number, 30)
    force_destroy  = optional(bool, true)
  })
  default = {}
}

variable "backups" {
  description = "Scheduled `pg_dump` backups of the stack's PostgreSQL to the bucket of the local AWS API (moto), under `backups/`, and a restore when PostgreSQL comes up empty: `every_minutes` (5 to 1440, default 60), `retention_days` (1 to 3650, default 14). `null` = no backups."
  type = object({
    every_minutes  = optional(number, 60)
    retention_days = optional(number, 14)
  })
  default = {}
}

variable "database" {
  description = "Airflow's metadata database on the local AWS API's RDS (moto) instead of the stack's `postgres` service; the cluster in a box serves each instance as a real PostgreSQL at the endpoint moto reports. `{ managed = true }` plus the cluster module's optional fields (`instance_class`, `allocated_storage`, `multi_az`, `backup_retention_days`, `engine_version`); `deletion_protection` is off by default here, so `make down` removes the instance. Turns `private_subnets` on, which the module requires. `null` (the default) = the stack's own PostgreSQL."
  type = object({
    managed               = optional(bool, false)
    instance_class        = optional(string, "db.t4g.micro")
    allocated_storage     = optional(number, 20)
    multi_az              = optional(bool, false)
    backup_retention_days = optional(number, 1)
    deletion_protection   = optional(bool, false)
    engine_version        = optional(string, "16")
  })
  default = null
}
