variable "ami_id" {
  description = "AMI of the manager VM (a Debian/Ubuntu or Amazon Linux image; Docker is installed at boot if absent). A change reaches managers launched afterwards (replacements), not running ones."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must be an AMI id such as \"ami-0123456789abcdef0\"."
  }
}

variable "cluster_name" {
  description = "Cluster name; names the parameters (`/airtasks/<cluster>/swarm/...`), the role and the VM."
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

variable "elastic_ip" {
  description = "Give the manager an Elastic IP, so its public address (the web URL) survives stop/start."
  type        = bool
  default     = true
  nullable    = false
}

variable "instance_type" {
  description = "EC2 instance type of the manager (it runs Airflow, PostgreSQL, RabbitMQ and the `manager` queue's worker)."
  type        = string
  default     = "t3.large"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "instance_type must be an EC2 instance type such as \"t3.large\"."
  }
}

variable "key_name" {
  description = "EC2 key pair for SSH (also needs `admin_cidrs` on the network). `null` = no key."
  type        = string
  default     = null
}

variable "labels" {
  description = "Extra Docker engine labels for the manager node."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "manager_count" {
  description = "How many Swarm managers: `1`, `3` or `5` (an Auto Scaling group of that fixed size; 3 keep the Swarm and the scaler running when one is lost, 5 when two are)."
  type        = number
  default     = 1
  nullable    = false

  validation {
    condition     = contains([1, 3, 5], var.manager_count)
    error_message = "manager_count must be 1, 3 or 5 (an odd number keeps a Raft quorum: 3 survive the loss of one manager, 5 of two); set manager_count = 3 for high availability."
  }
}

variable "root_volume_size" {
  description = "Size of the manager's encrypted gp3 root volume in GiB (images, PostgreSQL, logs)."
  type        = number
  default     = 40

  validation {
    condition     = var.root_volume_size >= 8 && var.root_volume_size <= 16384
    error_message = "root_volume_size must be between 8 and 16384 GiB."
  }
}

variable "security_group_ids" {
  description = "Security groups of the manager: the network's node and web groups."
  type        = list(string)

  validation {
    condition     = length(var.security_group_ids) > 0
    error_message = "security_group_ids must list at least one security group (the network module's node_security_group_id)."
  }
}

variable "stack" {
  description = "The Air-Tasks stack the manager deploys once the Swarm is up (`image`: the Air-Tasks image; `name`: stack name; `queues`: worker queue => slots per node; `queue_max_nodes`: worker queue => its group's max_size (sizes the queue's Airflow pool); `scaler_config`: JSON for the scaler on the manager; `postgres_image`/`rabbitmq_image`/`proxy_image`, `compose_override`, `tls_hostnames`, `task_logs`, `dag_bundles`, `database`, `backups`: see modules/swarm-boot). `null` = Swarm only."
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
}

variable "subnet_ids" {
  description = "Subnets of the managers (one per availability zone, so managers spread over zones): public ones when the UI is reached over the Internet."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "subnet_ids must list subnet ids such as \"subnet-0123abcd\" (the network module's public_subnet_ids)."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
  nullable    = false
}
