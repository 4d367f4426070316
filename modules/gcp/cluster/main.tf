locals {
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
      for q, cfg in var.queues : q => {
        group           = module.workers[q].name
        min_size        = cfg.min_size
        max_size        = cfg.max_size
        slots_per_node  = cfg.slots_per_node
        prescale        = cfg.prescale
        pack            = cfg.pack
        learn_durations = cfg.learn_durations
      }
    }
  }
}

################################################################################
# Network
################################################################################

module "network" {
  source = "../network"

  project_id   = var.project_id
  cluster_name = var.cluster_name
  region       = var.region
  subnet_cidr  = var.subnet_cidr
  admin_cidrs  = var.admin_cidrs
  ssh_from_iap = var.ssh_from_iap
  web_cidrs    = var.web_cidrs
}

################################################################################
# Swarm managers
################################################################################

module "manager" {
  source = "../swarm-manager"

  project_id    = var.project_id
  cluster_name  = var.cluster_name
  zone          = local.zones[0]
  zones         = local.zones
  manager_count = var.manager_count
  machine_type  = var.manager_machine_type
  subnetwork    = module.network.subnetwork
  network_tags  = [module.network.tags.node, module.network.tags.manager]
  boot_disk     = local.boot_disk
  # The user's stack as given, plus what only the cluster knows: the queues to render and the
  # scaler's config, where task logs go (task_logs.tf; null = on the nodes), where the
  # database's dumps go (backups.tf; null = no backups) and the managed database (database.tf; null
  # = the stack's own). merge() keeps any attribute added to
  # `stack` flowing through untouched; one([... var.stack[*]]) is null without a stack (a plain
  # conditional would type the null as merge()'s partial object, which the manager's `stack` type
  # then rejects). The manager's `stack` type must list each attribute added here: a conversion to
  # it drops any other.
  stack = one([for s in var.stack[*] : merge(s, {
    queues          = { for q, cfg in var.queues : q => cfg.slots_per_node }
    queue_max_nodes = { for q, cfg in var.queues : q => cfg.max_size }
    scaler_config   = jsonencode(local.scaler_config)
    task_logs       = local.task_logs_url
    dag_bundles     = module.dag_bundles.stack_setting
    backups         = local.backups_setting
    database        = local.database_setting
  })])
}

################################################################################
# Worker groups: one regional MIG per queue
################################################################################

module "workers" {
  source   = "../worker-group"
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
