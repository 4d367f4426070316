provider "aws" {
  region = var.region
}

locals {
  ami_id = var.ami_id != null ? var.ami_id : data.aws_ami.ubuntu[0].id
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
  stack              = var.stack
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
