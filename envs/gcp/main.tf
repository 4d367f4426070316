################################################################################
# Zones
################################################################################

data "google_compute_zones" "available" {
  count   = length(var.zones) == 0 ? 1 : 0
  project = var.project_id
  region  = var.region
  status  = "UP"
}

locals {
  zones = length(var.zones) > 0 ? var.zones : sort(data.google_compute_zones.available[0].names)

  boot_disk = var.image == null ? {} : { image = var.image }

  # What the scaler reads (output `scaler_config`); the manager hands it to the scaler it runs.
  scaler_config = {
    backend               = "gcp"
    cluster_name          = var.cluster_name
    region                = var.region
    project               = var.project_id
    interval_seconds      = var.scaler.interval_seconds
    stabilization_seconds = var.scaler.stabilization_seconds
    idle_seconds          = var.scaler.idle_seconds
    sources = {
      airflow  = { url = var.scaler.airflow_url }
      rabbitmq = var.scaler.rabbitmq_url == "" ? null : { url = var.scaler.rabbitmq_url, vhost = var.scaler.rabbitmq_vhost }
    }
    queues = {
      for q, group in module.workers : q => {
        group          = group.name
        min_size       = group.min_size
        max_size       = group.max_size
        slots_per_node = var.queues[q].slots_per_node
      }
    }
  }
}

################################################################################
# Network
################################################################################

module "network" {
  source = "../../modules/gcp/network"

  project_id   = var.project_id
  cluster_name = var.cluster_name
  region       = var.region
  subnet_cidr  = var.subnet_cidr
  admin_cidrs  = var.admin_cidrs
  ssh_from_iap = var.ssh_from_iap
  web_cidrs    = var.web_cidrs
}

################################################################################
# Swarm manager
################################################################################

module "manager" {
  source = "../../modules/gcp/swarm-manager"

  project_id    = var.project_id
  cluster_name  = var.cluster_name
  zone          = local.zones[0]
  zones         = local.zones
  manager_count = var.manager_count
  machine_type  = var.manager_machine_type
  subnetwork    = module.network.subnetwork
  network_tags  = [module.network.tags.node, module.network.tags.manager]
  boot_disk     = local.boot_disk
  # The manager renders the stack for these queues and hands the scaler its config.
  stack = var.stack == null ? null : {
    image            = var.stack.image
    name             = var.stack.name
    postgres_image   = var.stack.postgres_image
    rabbitmq_image   = var.stack.rabbitmq_image
    proxy_image      = var.stack.proxy_image
    compose_override = var.stack.compose_override
    tls_hostnames    = var.stack.tls_hostnames
    queues           = { for q, cfg in var.queues : q => cfg.slots_per_node }
    scaler_config    = jsonencode(local.scaler_config)
  }
}

################################################################################
# Worker groups: one regional MIG per queue
################################################################################

module "workers" {
  source   = "../../modules/gcp/worker-group"
  for_each = var.queues

  project_id   = var.project_id
  cluster_name = var.cluster_name
  queue        = each.key
  region       = var.region
  zones        = local.zones
  machine_type = each.value.machine_type
  min_size     = each.value.min_size
  max_size     = each.value.max_size
  spot         = each.value.spot
  subnetwork   = module.network.subnetwork
  network_tags = [module.network.tags.node]
  secret_ids   = module.manager.secret_ids
  boot_disk    = local.boot_disk
}
