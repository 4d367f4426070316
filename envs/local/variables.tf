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

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]{8,17}$", coalesce(var.ami_id, "x")))
    error_message = "ami_id must be an AMI id such as \"ami-0123456789abcdef0\", or null to look one up."
  }
}

variable "cluster_name" {
  description = "Name of the local cluster."
  type        = string
  default     = "local"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}[a-z0-9]$", var.cluster_name))
    error_message = "cluster_name must match ^[a-z][a-z0-9-]{1,20}[a-z0-9]$ (3-22 lowercase letters, digits, dashes, not ending in a dash; e.g. \"local\")."
  }
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

variable "queues" {
  description = "One worker group per Celery queue (same shape as envs/aws), small by default."
  type = map(object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    slots_per_node = number
    spot           = optional(bool, false)
  }))
  default = {
    default = { instance_types = ["t3.small"], min_size = 0, max_size = 3, slots_per_node = 2 }
  }
  nullable = false

  validation {
    condition     = length(var.queues) > 0
    error_message = "queues must define at least one queue, e.g. { default = { instance_types = [\"t3.small\"], min_size = 0, max_size = 3, slots_per_node = 2 } }."
  }

  validation {
    condition     = alltrue([for q in keys(var.queues) : can(regex("^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$", q))])
    error_message = "queues keys must be valid queue names: ^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$ (lowercase letter first, then lowercase letters, digits, dashes; no dots or underscores), e.g. \"default\"."
  }

  validation {
    condition     = !contains(keys(var.queues), "manager")
    error_message = "queues must not define \"manager\": that queue is reserved for the manager node; rename the queue."
  }

  validation {
    condition     = alltrue([for q in values(var.queues) : length(q.instance_types) > 0])
    error_message = "queues: every queue needs at least one entry in instance_types, e.g. instance_types = [\"t3.small\"]."
  }

  validation {
    condition     = alltrue([for q in values(var.queues) : q.min_size >= 0 && q.min_size <= q.max_size])
    error_message = "queues: min_size must be between 0 and max_size for every queue; lower min_size or raise max_size."
  }

  validation {
    condition     = alltrue([for q in values(var.queues) : q.max_size <= 20])
    error_message = "queues: max_size must be 20 or less per queue in envs/local (nothing real boots here)."
  }

  validation {
    condition     = alltrue([for q in values(var.queues) : q.slots_per_node >= 1 && floor(q.slots_per_node) == q.slots_per_node])
    error_message = "queues: slots_per_node must be a whole number of 1 or more (the Celery concurrency of one node)."
  }
}

variable "region" {
  description = "Region name used against the local endpoint."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as \"us-east-1\"."
  }
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

  validation {
    condition     = var.scaler.interval_seconds >= 1 && var.scaler.stabilization_seconds >= 0 && var.scaler.idle_seconds >= 0
    error_message = "scaler: interval_seconds must be 1 or more, stabilization_seconds and idle_seconds 0 or more."
  }
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

  validation {
    condition     = var.stack == null ? true : can(regex("^[A-Za-z0-9][A-Za-z0-9._/:@-]*$", var.stack.image))
    error_message = "stack.image must be an image reference such as \"10.213.0.1:5000/airtasks/airtasks:latest\" (no spaces or quotes), or set stack = null."
  }
}
