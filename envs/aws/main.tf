provider "aws" {
  region = var.region
}

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
      rabbitmq = { url = var.scaler.rabbitmq_url, vhost = var.scaler.rabbitmq_vhost }
    }
    queues = {
      for q, cfg in var.queues : q => {
        group          = module.workers[q].group_name
        min_size       = cfg.min_size
        max_size       = cfg.max_size
        slots_per_node = cfg.slots_per_node
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
    values = ["ubuntu/images/hvm-ssd*/ubuntu-jammy-22.04-amd64-server-*"]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

module "network" {
  source = "../../modules/aws/network"

  cluster_name    = var.cluster_name
  vpc_cidr        = var.vpc_cidr
  private_subnets = var.private_subnets
  admin_cidrs     = var.admin_cidrs
  web_cidrs       = var.web_cidrs
}

module "manager" {
  source = "../../modules/aws/swarm-manager"

  cluster_name       = var.cluster_name
  ami_id             = local.ami_id
  instance_type      = var.manager_instance_type
  subnet_ids         = module.network.public_subnet_ids
  manager_count      = var.manager_count
  security_group_ids = [module.network.node_security_group_id, module.network.web_security_group_id]
  key_name           = var.key_name
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

module "workers" {
  source   = "../../modules/aws/worker-group"
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
  worker_token_parameter    = module.manager.worker_token_parameter
  manager_address_parameter = module.manager.manager_address_parameter
}
