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
  description = "AMI for all nodes. `null` = the latest Ubuntu 22.04 LTS (amd64) from Canonical, looked up in the region."
  type        = string
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]{8,17}$", coalesce(var.ami_id, "x")))
    error_message = "ami_id must be an AMI id such as \"ami-0123456789abcdef0\", or null to look up Ubuntu 22.04."
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

  validation {
    condition     = contains([1, 3, 5], var.manager_count)
    error_message = "manager_count must be 1, 3 or 5 (an odd number keeps a Raft quorum: 3 survive the loss of one manager, 5 of two); set manager_count = 3 for high availability."
  }
}

variable "manager_instance_type" {
  description = "EC2 instance type of the manager (Airflow, PostgreSQL, RabbitMQ, the scaler)."
  type        = string
  default     = "t3.large"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.manager_instance_type))
    error_message = "manager_instance_type must be an EC2 instance type such as \"t3.large\"."
  }
}

variable "private_subnets" {
  description = "Put the workers in private subnets behind a NAT gateway (costs a NAT gateway). `false` = public subnets."
  type        = bool
  default     = false
  nullable    = false
}

variable "queues" {
  description = "One worker group per Celery queue, keyed by queue name: instance types (preferred first), min/max size, task slots per node (the worker's concurrency), optional spot."
  type = map(object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    slots_per_node = number
    spot           = optional(bool, false)
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
    condition     = alltrue([for q in values(var.queues) : q.max_size <= 100])
    error_message = "queues: max_size must be 100 or less per queue (a sanity cap against typos); split the queue or raise the cap in envs/aws/variables.tf."
  }

  validation {
    condition     = alltrue([for q in values(var.queues) : q.slots_per_node >= 1 && floor(q.slots_per_node) == q.slots_per_node])
    error_message = "queues: slots_per_node must be a whole number of 1 or more (the Celery concurrency of one node)."
  }
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as \"eu-west-1\"."
  }
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

  validation {
    condition     = var.scaler.interval_seconds >= 1 && var.scaler.stabilization_seconds >= 0 && var.scaler.idle_seconds >= 0
    error_message = "scaler: interval_seconds must be 1 or more, stabilization_seconds and idle_seconds 0 or more."
  }

  validation {
    condition     = can(regex("^https?://[^/\\s]+", var.scaler.airflow_url)) && can(regex("^https?://[^/\\s]+", var.scaler.rabbitmq_url))
    error_message = "scaler: airflow_url and rabbitmq_url must be http(s) URLs such as \"http://airflow-apiserver:8080\"."
  }
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
