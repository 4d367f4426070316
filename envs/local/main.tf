# The AWS modules against a local AWS API (moto): `make up` and the tests. The endpoint comes
# from AWS_ENDPOINT_URL in the environment (`airtasks dev up` sets it); the credentials are dummies,
# so this env can never touch a real account.
provider "aws" {
  region     = var.region
  access_key = "testing"
  secret_key = "testing"

  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  # Kept false: the account id of the local endpoint feeds the IAM policy ARNs.
  skip_requesting_account_id = false
}

locals {
  ami_id = var.ami_id != null ? var.ami_id : data.aws_ami.ubuntu[0].id

  # What the scaler reads. Without a stack: the `make up` Airflow on this machine, no broker. With
  # a stack (cluster in a box), the scaler runs inside it on the manager, as on AWS.
  scaler_sources = var.stack == null ? {
    airflow  = { url = "http://127.0.0.1:${var.airflow_port}" }
    rabbitmq = null
    } : {
    airflow  = { url = "http://airflow-apiserver:8080" }
    rabbitmq = { url = "http://rabbitmq:15672/rabbitmq", vhost = "/" } # management.path_prefix
  }
  scaler_config = {
    backend               = "aws"
    cluster_name          = var.cluster_name
    region                = var.region
    project               = null
    interval_seconds      = var.scaler.interval_seconds
    stabilization_seconds = var.scaler.stabilization_seconds
    idle_seconds          = var.scaler.idle_seconds
    sources               = local.scaler_sources
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
    values = ["ubuntu/images/hvm-ssd*/ubuntu-*-amd64-server-*"]
  }
}

module "network" {
  source = "../../modules/aws/network"

  cluster_name = var.cluster_name
  vpc_cidr     = "10.30.0.0/16"
}

module "manager" {
  source = "../../modules/aws/swarm-manager"

  cluster_name       = var.cluster_name
  ami_id             = local.ami_id
  instance_type      = "t3.small"
  subnet_ids         = module.network.public_subnet_ids
  manager_count      = var.manager_count
  security_group_ids = [module.network.node_security_group_id, module.network.web_security_group_id]
  root_volume_size   = 8
  elastic_ip         = false
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
  root_volume_size          = 8
  worker_token_parameter    = module.manager.worker_token_parameter
  manager_address_parameter = module.manager.manager_address_parameter
}
