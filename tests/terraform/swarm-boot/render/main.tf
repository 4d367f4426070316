# Renders the boot script for both roles on both clouds (tests/terraform/render.py plans this).
terraform {
  required_version = ">= 1.5"
}

variable "cluster_name" {
  type    = string
  default = "demo"
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "join_timeout_seconds" {
  type    = number
  default = 900
}

variable "stack_image" {
  type    = string
  default = null
}

locals {
  refs = {
    aws = {
      worker  = "/airtasks/${var.cluster_name}/swarm/worker-token"
      manager = "/airtasks/${var.cluster_name}/swarm/manager-token"
      address = "/airtasks/${var.cluster_name}/swarm/manager-address"
    }
    gcp = {
      worker  = "airtasks-${var.cluster_name}-worker-token"
      manager = "airtasks-${var.cluster_name}-manager-token"
      address = "airtasks-${var.cluster_name}-manager-address"
    }
  }
  cases = merge(
    {
      for pair in setproduct(["manager", "worker"], ["aws", "gcp"]) : "${pair[0]}-${pair[1]}" => {
        role  = pair[0]
        cloud = pair[1]
        spot  = false
      }
    },
    { for cloud in ["aws", "gcp"] : "spot-worker-${cloud}" => { role = "worker", cloud = cloud, spot = true } },
  )
}

module "boot" {
  source   = "../../../../modules/swarm-boot"
  for_each = local.cases

  cloud                = each.value.cloud
  role                 = each.value.role
  cluster_name         = var.cluster_name
  queue                = each.value.role == "worker" ? "default" : null
  region               = each.value.cloud == "aws" ? var.region : null
  project_id           = each.value.cloud == "gcp" ? "demo-project" : null
  worker_token_ref     = local.refs[each.value.cloud].worker
  manager_token_ref    = each.value.role == "manager" ? local.refs[each.value.cloud].manager : null
  manager_address_ref  = local.refs[each.value.cloud].address
  labels               = { "airtasks.gpu" = "none" }
  join_timeout_seconds = var.join_timeout_seconds
  spot                 = each.value.spot
  stack                = each.value.role == "manager" && var.stack_image != null ? { image = var.stack_image } : null
}

output "scripts" {
  value = { for k, m in module.boot : k => m.script }
}
