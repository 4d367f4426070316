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
  stack         = var.stack
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
