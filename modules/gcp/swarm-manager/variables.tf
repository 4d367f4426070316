variable "boot_disk" {
  description = "Boot disk: `image` (family or image path; Debian 12 by default, Shielded-VM ready), `size_gb`, `type` (`pd-balanced` | `pd-ssd` | `pd-standard`)."
  type = object({
    image   = optional(string, "debian-cloud/debian-12")
    size_gb = optional(number, 50)
    type    = optional(string, "pd-balanced")
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.boot_disk.size_gb >= 20 && floor(var.boot_disk.size_gb) == var.boot_disk.size_gb
    error_message = "boot_disk.size_gb must be a whole number of GB, at least 20 (Docker images and the PostgreSQL volume live there)."
  }

  validation {
    condition     = contains(["pd-balanced", "pd-ssd", "pd-standard"], var.boot_disk.type)
    error_message = "boot_disk.type must be \"pd-balanced\", \"pd-ssd\" or \"pd-standard\"."
  }
}

variable "cluster_name" {
  description = "Cluster name; the VM is `airtasks-<cluster_name>-manager`, the secrets `airtasks-<cluster_name>-{worker-token,manager-token,manager-address}`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}[a-z0-9]$", var.cluster_name))
    error_message = "cluster_name must match ^[a-z][a-z0-9-]{1,20}[a-z0-9]$ (3-22 lowercase letters, digits, dashes; e.g. \"demo\")."
  }
}

variable "docker_install" {
  description = "Install Docker from the OS packages at boot when the image lacks it. `false` = the image must have Docker; the boot script fails clearly otherwise."
  type        = bool
  default     = true
  nullable    = false
}

variable "external_ip" {
  description = "Give the manager a static external IP (the web rule of `network` lets `web_cidrs` reach its HTTPS proxy). `false` = internal IP only; reach it over VPN, IAP or your own load balancer."
  type        = bool
  default     = true
  nullable    = false
}

variable "gcp_labels" {
  description = "Extra GCP labels on the VM, its disk and the secrets, on top of `airtasks-cluster` and `airtasks-role`."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      for k, v in var.gcp_labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))
    ])
    error_message = "gcp_labels keys must match ^[a-z][a-z0-9_-]{0,62}$ and values ^[a-z0-9_-]{0,63}$ (GCP label rules: lowercase, digits, _ and -)."
  }

  validation {
    condition     = length(setintersection(keys(var.gcp_labels), ["airtasks-cluster", "airtasks-queue", "airtasks-role"])) == 0
    error_message = "gcp_labels must not set airtasks-cluster, airtasks-queue or airtasks-role: the module sets them."
  }
}

variable "labels" {
  description = "Extra Docker engine labels (`key = value`) for the manager node, on top of `airtasks.role` and `airtasks.cluster`; usable in placement constraints."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      for k, v in var.labels : can(regex("^[a-z0-9][a-z0-9._-]*$", k)) && can(regex("^[A-Za-z0-9._/:-]*$", v))
    ])
    error_message = "labels keys must match ^[a-z0-9][a-z0-9._-]*$ and values ^[A-Za-z0-9._/:-]*$ (no spaces or quotes)."
  }

  validation {
    condition     = length(setintersection(keys(var.labels), ["airtasks.cluster", "airtasks.queue", "airtasks.role"])) == 0
    error_message = "labels must not set airtasks.cluster, airtasks.queue or airtasks.role: the boot script sets them."
  }
}

variable "machine_type" {
  description = "Machine type of the manager VM (runs Airflow, PostgreSQL, RabbitMQ and the `manager` queue's worker), e.g. `e2-standard-4`."
  type        = string
  default     = "e2-standard-4"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*-[a-z0-9-]+$", var.machine_type))
    error_message = "machine_type must be a GCE machine type such as \"e2-standard-4\" or \"n2-custom-4-16384\"."
  }
}

variable "manager_count" {
  description = "How many Swarm managers: `1`, `3` or `5` (3 keep the Swarm and the scaler running when one is lost, 5 when two are). The first VM initialises the Swarm; the others join as managers. A lost VM is recreated by the next `terraform apply` under its name and rejoins."
  type        = number
  default     = 1
  nullable    = false

  validation {
    condition     = contains([1, 3, 5], var.manager_count)
    error_message = "manager_count must be 1, 3 or 5 (an odd number keeps a Raft quorum: 3 survive the loss of one manager, 5 of two); set manager_count = 3 for high availability."
  }
}

variable "network_tags" {
  description = "Network tags of the VM; pass `[module.network.tags.node, module.network.tags.manager]` so the Swarm and HTTPS firewall rules apply."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.network_tags) > 0 && alltrue([for t in var.network_tags : can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", t))])
    error_message = "network_tags must list at least one tag, each matching ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ (use the `tags` output of modules/gcp/network)."
  }
}

variable "project_id" {
  description = "GCP project id of the VM, its service account and the secrets."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id (6-30 lowercase letters, digits, dashes), e.g. \"my-project-123\"; the project number will not do."
  }
}

variable "stack" {
  description = "The Air-Tasks stack the manager deploys once the Swarm is up (`image`: the Air-Tasks image; `name`: stack name; `queues`: worker queue => slots per node; `queue_max_nodes`: worker queue => its group's max_size (sizes the queue's Airflow pool); `scaler_config`: JSON for the scaler on the manager; `task_logs`: Airflow's remote base log folder, `gs://<bucket>/<prefix>`, rendered into the stack by the manager's boot script (null = logs stay on the nodes); `backups`: JSON for `airtasks stack render --backups` (`url`, `gs://<bucket>/<prefix>`, and `every_minutes`), where the `db-backup` service on a manager dumps the stack's PostgreSQL and restores it from (null = no backups); `database`: JSON for `airtasks stack render --database` (`host`, `port`, `name`, `user` and `secret_name`, the Secret Manager secret holding the password, never the password; null = the stack's own `postgres` service); `postgres_image`/`rabbitmq_image`/`proxy_image`, `compose_override`, `tls_hostnames`, `dag_bundles`: see modules/swarm-boot). `null` = Swarm only."
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
    condition     = var.stack == null || can(regex("^[A-Za-z0-9][A-Za-z0-9._/:@-]*$", var.stack.image))
    error_message = "stack.image must be an image reference such as \"ghcr.io/acme/airtasks:1.0\" (no spaces or quotes), or set stack = null."
  }

  validation {
    condition     = var.stack == null ? true : (var.stack.task_logs == null || can(regex("^gs://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._/-]*)?$", var.stack.task_logs)))
    error_message = "stack.task_logs must be a gs://BUCKET/PREFIX URL such as \"gs://my-project-123-airtasks-demo-logs/logs\", or null to keep task logs on the nodes."
  }

  # The managers' service account reaches Cloud Storage only: an s3:// URL would fail at every dump.
  validation {
    condition     = var.stack == null ? true : (var.stack.backups == null || can(regex("^gs://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[A-Za-z0-9._/-]+$", jsondecode(var.stack.backups).url)))
    error_message = "stack.backups must be JSON with a gs://BUCKET/PREFIX url, such as {\"url\": \"gs://my-project-123-airtasks-demo-backups/backups\", \"every_minutes\": 60}, or null to take no backups."
  }
}

variable "subnetwork" {
  description = "Self link (or id) of the subnet the manager lives in (the `subnetwork` output of modules/gcp/network)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("(^|/)projects/[^/]+/regions/[^/]+/subnetworks/[^/]+$", var.subnetwork))
    error_message = "subnetwork must be a subnet self link or id (projects/<p>/regions/<r>/subnetworks/<name>); use the `subnetwork` output of modules/gcp/network."
  }
}

variable "zone" {
  description = "Zone of the manager VM, inside the region of `subnetwork`, e.g. `europe-west1-b`."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", var.zone))
    error_message = "zone must be a GCP zone such as \"europe-west1-b\" (not a region)."
  }
}

variable "zones" {
  description = "Zones to spread the managers over, round robin (e.g. the worker groups' zones). `[]` = every manager in `zone`."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for z in var.zones : can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", z))])
    error_message = "zones must hold GCP zones such as \"europe-west1-b\", or be []."
  }
}
