locals {
  ami_id = var.ami_id != null ? var.ami_id : data.aws_ami.ubuntu[0].id

  # What the scaler reads (output `scaler_config`); the manager hands it to the scaler it runs.
  scaler_config = {
    backend               = "aws"
    cluster_name          = var.cluster_name
    region                = var.region
    project               = null
    interval_seconds      = var.scaler.interval_seconds
    stabilization_seconds = var.scaler.stabilization_seconds
    idle_seconds          = var.scaler.idle_seconds
    sources = {
      airflow  = { url = var.scaler.airflow_url }
      rabbitmq = var.scaler.rabbitmq_url == "" ? null : { url = var.scaler.rabbitmq_url, vhost = var.scaler.rabbitmq_vhost }
    }
    queues = {
      for q, cfg in var.queues : q => {
        group           = module.workers[q].group_name
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

data "aws_ami" "ubuntu" {
  count = var.ami_id == null ? 1 : 0

  most_recent = true
  owners      = ["099720109477"] # Canonical

  filter {
    name   = "name"
    values = [var.ami_name_pattern]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

module "network" {
  source = "../network"

  cluster_name    = var.cluster_name
  vpc_cidr        = var.vpc_cidr
  private_subnets = var.private_subnets
  admin_cidrs     = var.admin_cidrs
  web_cidrs       = var.web_cidrs
  tags            = var.tags
}

module "manager" {
  source = "../swarm-manager"

  cluster_name       = var.cluster_name
  ami_id             = local.ami_id
  instance_type      = var.manager_instance_type
  subnet_ids         = module.network.public_subnet_ids
  manager_count      = var.manager_count
  security_group_ids = [module.network.node_security_group_id, module.network.web_security_group_id]
  key_name           = var.key_name
  root_volume_size   = var.manager_root_volume_size
  elastic_ip         = var.elastic_ip
  tags               = var.tags
  # The user's stack as given, plus what only the cluster knows: the queues to render and the
  # scaler's config. merge() keeps any attribute added to `stack` flowing through untouched;
  # one([... var.stack[*]]) is null without a stack (a plain conditional would type the null
  # as merge()'s partial object, which the manager's `stack` type then rejects).
  stack = one([for s in var.stack[*] : merge(s, {
    queues          = { for q, cfg in var.queues : q => cfg.slots_per_node }
    queue_max_nodes = { for q, cfg in var.queues : q => cfg.max_size }
    scaler_config   = jsonencode(local.scaler_config)
    task_logs       = local.task_logs_url
    dag_bundles     = module.dag_bundles.stack_setting
    database        = local.database_setting
    backups         = local.backups_setting
  })])
}

module "workers" {
  source   = "../worker-group"
  for_each = var.queues

  cluster_name              = var.cluster_name
  queue                     = each.key
  ami_id                    = local.ami_id
  instance_types            = each.value.instance_types
  min_size                  = each.value.min_size
  max_size                  = each.value.max_size
  spot                      = each.value.spot
  subnet_ids                = module.network.worker_subnet_ids
  security_group_ids        = [module.network.node_security_group_id]
  key_name                  = var.key_name
  root_volume_size          = var.worker_root_volume_size
  tags                      = var.tags
  worker_token_parameter    = module.manager.worker_token_parameter
  manager_address_parameter = module.manager.manager_address_parameter
  # The Celery worker runs in a container and uploads task logs, or reads the database's
  # password, with the node's role.
  metadata_hop_limit = var.task_logs == null && !local.database_on ? 1 : 2
}
