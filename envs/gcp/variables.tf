variable "admin_cidrs" {
  description = "CIDR ranges allowed to SSH into the nodes. Default none = no SSH (see `ssh_from_iap`)."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "backups" {
  description = "Scheduled `pg_dump` backups of the stack's own PostgreSQL (Airflow's metadata database, on a manager's local volume) to a Cloud Storage bucket of their own (`<project_id>-airtasks-<cluster_name>-backups` in `region`; uniform bucket-level access, public access prevented), under `backups/`, and a restore from the newest one when PostgreSQL comes up empty (a replaced manager). Not the log bucket: every node may read that one, and a dump holds the database's connection secrets; only the managers may write, list and read this one. `every_minutes`: how often a dump is taken (5 to 1440, default 60); `retention_days`: dumps under `backups/` older than this are deleted by a lifecycle rule (1 to 3650, default 14); `force_destroy`: let `terraform destroy` delete the bucket with the dumps in it (off: destroy stops at a bucket that still holds dumps). On by default; skipped with `database.managed = true` (Cloud SQL keeps its own backups). `null` = no backups, no bucket."
  type = object({
    every_minutes  = optional(number, 60)
    retention_days = optional(number, 14)
    force_destroy  = optional(bool, false)
  })
  default = {}
}

variable "cluster_name" {
  description = "Name of the cluster; every resource is named `airtasks-<cluster_name>...`."
  type        = string
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
}

variable "image" {
  description = "Boot image of every VM (image family or path). `null` = Debian 12 (`debian-cloud/debian-12`); Docker is installed at boot if absent."
  type        = string
  default     = null
}

variable "manager_count" {
  description = "How many Swarm managers: `1`, `3` or `5`, spread over `zones`. 3 keep the Swarm, Airflow's control plane and the scaler running when one manager is lost (5: two); a lost VM is recreated by the next `terraform apply` and rejoins."
  type        = number
  default     = 1
  nullable    = false
}

variable "manager_machine_type" {
  description = "Machine type of the manager VM (Airflow, PostgreSQL, RabbitMQ, the scaler)."
  type        = string
  default     = "e2-standard-4"
  nullable    = false
}

variable "project_id" {
  description = "GCP project id to deploy into (the project id, not its number)."
  type        = string
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

  # This deployment's own cap (modules/gcp/cluster checks the rest).
  validation {
    condition     = alltrue([for q in values(var.queues) : q.max_size >= 1 && q.max_size <= 100 && floor(q.max_size) == q.max_size])
    error_message = "queues.<name>.max_size must be a whole number between 1 and 100 (a sanity cap against typos); split the queue or raise the cap in envs/gcp/variables.tf."
  }
}

variable "region" {
  description = "GCP region of the cluster."
  type        = string
  default     = "europe-west1"
  nullable    = false
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
}

variable "ssh_from_iap" {
  description = "Allow SSH from Google's IAP range, for `gcloud compute ssh --tunnel-through-iap` (workers have no public IP)."
  type        = bool
  default     = false
  nullable    = false
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

variable "subnet_cidr" {
  description = "IPv4 range of the cluster's subnet (Swarm ports are open only inside it)."
  type        = string
  default     = "10.20.0.0/20"
  nullable    = false
}

variable "task_logs" {
  description = "Remote task logs in a Cloud Storage bucket of the cluster's own (`<project_id>-airtasks-<cluster_name>-logs` in `region`; uniform bucket-level access, public access prevented), under the prefix `logs/`, so a log outlives the node that ran its task. `retention_days`: objects under `logs/` older than this are deleted (a lifecycle rule); `force_destroy`: let `terraform destroy` delete the bucket with the logs in it (off: destroy stops at a bucket that still holds logs). `null` = no bucket: logs stay on the worker node and are lost with it."
  type = object({
    retention_days = optional(number, 30)
    force_destroy  = optional(bool, false)
  })
  default = {}
}

variable "web_cidrs" {
  description = "CIDR ranges allowed to reach the manager's HTTPS proxy (Airflow UI, Flower). Default none."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "zones" {
  description = "Zones of `region` for the worker MIGs (two or more); the manager goes in the first. Default `[]` = every zone of the region that is UP at the first apply, pinned in state (later plans never move a VM when a zone goes down or Google adds one)."
  type        = list(string)
  default     = []
  nullable    = false
}
