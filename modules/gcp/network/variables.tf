################################################################################
# Network
################################################################################

variable "admin_cidrs" {
  description = "CIDR ranges allowed to SSH (22/tcp) into every node. Default none = no SSH rule at all."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.admin_cidrs : can(cidrnetmask(c))])
    error_message = "admin_cidrs must hold IPv4 CIDR ranges such as \"203.0.113.7/32\"; fix or remove the bad entry."
  }

  validation {
    condition     = !contains(var.admin_cidrs, "0.0.0.0/0")
    error_message = "admin_cidrs must not contain 0.0.0.0/0: list your own address ranges, or set ssh_from_iap = true and use `gcloud compute ssh --tunnel-through-iap`."
  }
}

variable "cluster_name" {
  description = "Cluster name; resources are named `airtasks-<cluster_name>[-...]`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}[a-z0-9]$", var.cluster_name))
    error_message = "cluster_name must match ^[a-z][a-z0-9-]{1,20}[a-z0-9]$ (3-22 lowercase letters, digits, dashes; e.g. \"demo\")."
  }
}

variable "project_id" {
  description = "GCP project id the network is created in."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id (6-30 lowercase letters, digits, dashes), e.g. \"my-project-123\"; the project number will not do."
  }
}

variable "region" {
  description = "GCP region of the subnet, router and Cloud NAT, e.g. `europe-west1`."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region such as \"europe-west1\" (not a zone like \"europe-west1-b\")."
  }
}

variable "ssh_from_iap" {
  description = "Also allow SSH from Google's IAP TCP-forwarding range (`35.235.240.0/20`), for `gcloud compute ssh --tunnel-through-iap` to nodes without public IPs."
  type        = bool
  default     = false
  nullable    = false
}

variable "subnet_cidr" {
  description = "Primary IPv4 range of the regional subnet; Swarm ports are open only inside it."
  type        = string
  default     = "10.20.0.0/20"
  nullable    = false

  validation {
    condition     = can(cidrnetmask(var.subnet_cidr)) && try(tonumber(split("/", var.subnet_cidr)[1]) <= 26, false)
    error_message = "subnet_cidr must be an IPv4 CIDR range of /26 or larger, such as \"10.20.0.0/20\"."
  }

  validation {
    condition     = can(cidrnetmask(var.subnet_cidr)) && try(cidrhost(var.subnet_cidr, 0) == split("/", var.subnet_cidr)[0], false)
    error_message = "subnet_cidr must start at its network address (e.g. \"10.20.0.0/20\", not \"10.20.1.5/20\")."
  }
}

variable "web_cidrs" {
  description = "CIDR ranges allowed to reach the manager's HTTPS proxy (443/tcp: Airflow UI, Flower). Default none = no web rule."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.web_cidrs : can(cidrnetmask(c))])
    error_message = "web_cidrs must hold IPv4 CIDR ranges such as \"198.51.100.0/24\" (\"0.0.0.0/0\" = the whole internet); fix or remove the bad entry."
  }
}
