variable "ami_id" {
  description = "AMI of the worker VMs (Debian/Ubuntu or Amazon Linux; Docker is installed at boot if absent)."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must be an AMI id such as \"ami-0123456789abcdef0\"."
  }
}

variable "cluster_name" {
  description = "Cluster name; the group is `airtasks-<cluster>-<queue>` and tagged `airtasks:cluster`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}[a-z0-9]$", var.cluster_name))
    error_message = "cluster_name must match ^[a-z][a-z0-9-]{1,20}[a-z0-9]$ (3-22 lowercase letters, digits, dashes; e.g. \"demo\")."
  }
}

variable "docker_install" {
  description = "Install Docker and the AWS CLI at boot when the AMI lacks them."
  type        = bool
  default     = true
  nullable    = false
}

variable "drain_timeout_seconds" {
  description = "Heartbeat timeout of the termination lifecycle hook: how long a terminating instance waits (Terminating:Wait) for the scaler to drain it before it goes anyway."
  type        = number
  default     = 300

  validation {
    condition     = var.drain_timeout_seconds >= 30 && var.drain_timeout_seconds <= 7200
    error_message = "drain_timeout_seconds must be between 30 and 7200 (the lifecycle hook limits)."
  }
}

variable "instance_types" {
  description = "EC2 instance types for the group, preferred first. More than one (or `spot`) uses a mixed instances policy."
  type        = list(string)

  validation {
    condition     = length(var.instance_types) > 0
    error_message = "instance_types must list at least one EC2 instance type, e.g. [\"t3.large\"]."
  }

  validation {
    condition     = alltrue([for t in var.instance_types : can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", t))])
    error_message = "instance_types must hold EC2 instance types such as \"t3.large\" or \"m6i.xlarge\"."
  }
}

variable "join_timeout_seconds" {
  description = "How long a booting worker waits for the manager's token and address before its boot script fails."
  type        = number
  default     = 900

  validation {
    condition     = var.join_timeout_seconds >= 1 && var.join_timeout_seconds <= 7200
    error_message = "join_timeout_seconds must be between 1 and 7200."
  }
}

variable "key_name" {
  description = "EC2 key pair for SSH (also needs `admin_cidrs` on the network). `null` = no key."
  type        = string
  default     = null
}

variable "labels" {
  description = "Extra Docker engine labels for the group's nodes."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "manager_address_parameter" {
  description = "SSM parameter name holding the manager's Swarm address (the swarm-manager module's `manager_address_parameter`)."
  type        = string

  validation {
    condition     = can(regex("^(/[A-Za-z0-9_.-]+)+$", var.manager_address_parameter))
    error_message = "manager_address_parameter must be an SSM parameter name such as \"/airtasks/demo/swarm/manager-address\"."
  }
}

variable "max_size" {
  description = "Most instances the scaler may run in this group (0 to 500)."
  type        = number

  validation {
    condition     = var.max_size >= 0 && var.max_size <= 500 && floor(var.max_size) == var.max_size
    error_message = "max_size must be a whole number from 0 to 500."
  }
}

variable "min_size" {
  description = "Fewest instances in this group (0 = scale to zero when idle). Also the initial size; after creation the scaler owns the size."
  type        = number

  validation {
    condition     = var.min_size >= 0 && floor(var.min_size) == var.min_size
    error_message = "min_size must be a whole number, 0 or more."
  }
}

variable "queue" {
  description = "Celery queue this group serves; the group is `airtasks-<cluster>-<queue>`."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$", var.queue)) && var.queue != "manager"
    error_message = "queue must match ^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$ and must not be \"manager\" (reserved: the manager runs that queue)."
  }
}

variable "root_volume_size" {
  description = "Size of each worker's encrypted gp3 root volume in GiB."
  type        = number
  default     = 30

  validation {
    condition     = var.root_volume_size >= 8 && var.root_volume_size <= 16384
    error_message = "root_volume_size must be between 8 and 16384 GiB."
  }
}

variable "security_group_ids" {
  description = "Security groups of the workers (the network module's node_security_group_id)."
  type        = list(string)

  validation {
    condition     = length(var.security_group_ids) > 0
    error_message = "security_group_ids must list at least one security group (the network module's node_security_group_id)."
  }
}

variable "spot" {
  description = "Run the group on spot capacity (mixed instances policy, 0% on-demand). `false` = on-demand only."
  type        = bool
  default     = false
  nullable    = false
}

variable "subnet_ids" {
  description = "Subnets the group spreads over (one per availability zone)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids must list at least one subnet (the network module's worker_subnet_ids)."
  }
}

variable "tags" {
  description = "Extra tags for every resource (propagated to the instances)."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "worker_token_parameter" {
  description = "SSM parameter name holding the Swarm worker join token (the swarm-manager module's `worker_token_parameter`)."
  type        = string

  validation {
    condition     = can(regex("^(/[A-Za-z0-9_.-]+)+$", var.worker_token_parameter))
    error_message = "worker_token_parameter must be an SSM parameter name such as \"/airtasks/demo/swarm/worker-token\"."
  }
}

variable "metadata_hop_limit" {
  description = "IMDSv2 hop limit of the nodes: 1 keeps the instance role from containers on the node; 2 lets the Celery worker's container use it (it uploads task logs)."
  type        = number
  default     = 1

  validation {
    condition     = contains([1, 2], var.metadata_hop_limit)
    error_message = "metadata_hop_limit must be 1 (containers cannot reach the instance role) or 2 (the Celery worker's container can)."
  }
}
