variable "boot_disk" {
  description = "Boot disk of each VM: `image` (family or image path; Debian 12 by default, Shielded-VM ready), `size_gb`, `type` (`pd-balanced` | `pd-ssd` | `pd-standard`)."
  type = object({
    image   = optional(string, "debian-cloud/debian-12")
    size_gb = optional(number, 30)
    type    = optional(string, "pd-balanced")
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.boot_disk.size_gb >= 10 && floor(var.boot_disk.size_gb) == var.boot_disk.size_gb
    error_message = "boot_disk.size_gb must be a whole number of GB, at least 10."
  }

  validation {
    condition     = contains(["pd-balanced", "pd-ssd", "pd-standard"], var.boot_disk.type)
    error_message = "boot_disk.type must be \"pd-balanced\", \"pd-ssd\" or \"pd-standard\"."
  }
}

variable "cluster_name" {
  description = "Cluster name; the group is `airtasks-<cluster_name>-<queue>`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}[a-z0-9]$", var.cluster_name))
    error_message = "cluster_name must match ^[a-z][a-z0-9-]{1,20}[a-z0-9]$ (3-22 lowercase letters, digits, dashes; e.g. \"demo\")."
  }
}

variable "docker_install" {
  description = "Install Docker from the OS packages at boot when the image lacks it. `false` = the image must have Docker (faster boots); the boot script fails clearly otherwise."
  type        = bool
  default     = true
  nullable    = false
}

variable "gcp_labels" {
  description = "Extra GCP labels on the VMs and their disks, on top of `airtasks-cluster`, `airtasks-queue` and `airtasks-role`."
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

variable "join_timeout_seconds" {
  description = "How long a booting VM waits (bounded back-off, a log line per try) for the worker token and manager address before it fails."
  type        = number
  default     = 900
  nullable    = false

  validation {
    condition     = var.join_timeout_seconds >= 1 && var.join_timeout_seconds <= 7200 && floor(var.join_timeout_seconds) == var.join_timeout_seconds
    error_message = "join_timeout_seconds must be a whole number of seconds between 1 and 7200 (default 900)."
  }
}

variable "labels" {
  description = "Extra Docker engine labels (`key = value`) for the group's nodes, on top of `airtasks.role`, `airtasks.cluster` and `airtasks.queue`; usable in placement constraints."
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
  description = "Machine type of the group's VMs, e.g. `e2-standard-4` or `n2-custom-4-16384`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*-[a-z0-9-]+$", var.machine_type))
    error_message = "machine_type must be a GCE machine type such as \"e2-standard-4\" or \"n2-custom-4-16384\"."
  }
}

variable "max_size" {
  description = "Most VMs the scaler may run in this group (the MIG has no autoscaler; the scaler reads this bound)."
  type        = number

  validation {
    condition     = var.max_size >= 1 && var.max_size <= 1000 && floor(var.max_size) == var.max_size
    error_message = "max_size must be a whole number between 1 and 1000."
  }
}

variable "min_size" {
  description = "Fewest VMs the scaler keeps; also the group's size when Terraform creates it (afterwards the scaler owns the size)."
  type        = number
  default     = 0
  nullable    = false

  validation {
    condition     = var.min_size >= 0 && floor(var.min_size) == var.min_size
    error_message = "min_size must be a whole number >= 0."
  }
}

variable "network_tags" {
  description = "Network tags of the VMs; pass `[module.network.tags.node]` so the Swarm firewall rule applies."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.network_tags) > 0 && alltrue([for t in var.network_tags : can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", t))])
    error_message = "network_tags must list at least one tag, each matching ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ (use the `tags` output of modules/gcp/network)."
  }
}

variable "project_id" {
  description = "GCP project id of the group, its template and its service account."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id (6-30 lowercase letters, digits, dashes), e.g. \"my-project-123\"; the project number will not do."
  }
}

variable "queue" {
  description = "Celery queue this group serves (`airtasks.queue` engine label, `airtasks-queue` GCP label)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$", var.queue)) && var.queue != "manager"
    error_message = "queue must match ^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$ (GCE names cannot end with \"-\") and must not be \"manager\" (the manager VM serves that queue)."
  }
}

variable "region" {
  description = "Region of the regional MIG, e.g. `europe-west1`."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region such as \"europe-west1\" (not a zone like \"europe-west1-b\")."
  }
}

variable "secret_ids" {
  description = "Secret Manager secret ids of the join information (the `secret_ids` output of `swarm-manager`). The VMs may read `worker_token` and `manager_address` only."
  type = object({
    worker_token    = string
    manager_token   = string
    manager_address = string
  })
  nullable = false

  validation {
    condition     = alltrue([for id in values(var.secret_ids) : can(regex("^[A-Za-z0-9_-]{1,255}$", id))])
    error_message = "secret_ids must hold secret ids (letters, digits, _ and -), not full names or values; pass module.<manager>.secret_ids."
  }
}

variable "spot" {
  description = "Run the group on Spot VMs (cheaper, may be preempted; the MIG recreates preempted VMs and prefers zones with capacity)."
  type        = bool
  default     = false
  nullable    = false
}

variable "subnetwork" {
  description = "Self link (or id) of the subnet of the VMs (the `subnetwork` output of modules/gcp/network). VMs get no public IP; egress goes through Cloud NAT."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("(^|/)projects/[^/]+/regions/[^/]+/subnetworks/[^/]+$", var.subnetwork))
    error_message = "subnetwork must be a subnet self link or id (projects/<p>/regions/<r>/subnetworks/<name>); use the `subnetwork` output of modules/gcp/network."
  }
}

variable "zones" {
  description = "Zones of `region` the regional MIG spreads its VMs over (two or more), e.g. `[\"europe-west1-b\", \"europe-west1-c\", \"europe-west1-d\"]`."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(distinct(var.zones)) >= 2 && alltrue([for z in var.zones : can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", z))])
    error_message = "zones must list two or more distinct zones such as \"europe-west1-b\", all in `region` (the group spreads over them so one zone running out of capacity does not stop the queue)."
  }
}
