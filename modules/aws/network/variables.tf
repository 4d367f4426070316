variable "admin_cidrs" {
  description = "CIDR blocks allowed to reach SSH (22/tcp) on every node. Empty (the default) = no SSH at all."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.admin_cidrs : can(cidrhost(c, 0)) && strcontains(c, "/")])
    error_message = "admin_cidrs must be CIDR blocks such as \"203.0.113.7/32\"; use [] for no SSH."
  }
}

variable "availability_zones" {
  description = "Availability zones for the subnets, two or more. `null` = the first `az_count` zones of the region."
  type        = list(string)
  default     = null

  validation {
    condition     = var.availability_zones == null || length(coalesce(var.availability_zones, [])) >= 2
    error_message = "availability_zones must list at least 2 zones (e.g. [\"eu-west-1a\", \"eu-west-1b\"]), or be null."
  }
}

variable "az_count" {
  description = "How many availability zones to use when `availability_zones` is null (2 to 6)."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6 && floor(var.az_count) == var.az_count
    error_message = "az_count must be a whole number from 2 to 6."
  }
}

variable "cluster_name" {
  description = "Cluster name; prefixes resource names and sets the `airtasks:cluster` tag."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}[a-z0-9]$", var.cluster_name))
    error_message = "cluster_name must match ^[a-z][a-z0-9-]{1,20}[a-z0-9]$ (3-22 lowercase letters, digits, dashes; e.g. \"demo\")."
  }
}

variable "private_subnets" {
  description = "Also create private subnets (one per zone) with a NAT gateway, for workers without public addresses. `false` = public subnets only."
  type        = bool
  default     = false
  nullable    = false
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC, /16 to /24; subnets are carved from it (8 more bits, at most /28)."
  type        = string
  default     = "10.20.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && can(regex("/(1[6-9]|2[0-4])$", var.vpc_cidr))
    error_message = "vpc_cidr must be an IPv4 CIDR block from /16 to /24, such as \"10.20.0.0/16\"."
  }
}

variable "web_cidrs" {
  description = "CIDR blocks allowed to reach HTTPS (443/tcp, and 80/tcp which redirects) on the manager. Empty = the UI is not reachable from outside."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.web_cidrs : can(cidrhost(c, 0)) && strcontains(c, "/")])
    error_message = "web_cidrs must be CIDR blocks such as \"203.0.113.0/24\" (\"0.0.0.0/0\" for everyone)."
  }
}
