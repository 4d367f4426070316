# A thin root: the provider and one call of modules/aws/cluster, which holds the wiring and the
# validations. The variables here are the user-facing interface (terraform.tfvars).
provider "aws" {
  region = var.region
}

module "cluster" {
  source = "../../modules/aws/cluster"

  cluster_name          = var.cluster_name
  region                = var.region
  vpc_cidr              = var.vpc_cidr
  private_subnets       = var.private_subnets
  admin_cidrs           = var.admin_cidrs
  web_cidrs             = var.web_cidrs
  ami_id                = var.ami_id
  key_name              = var.key_name
  manager_count         = var.manager_count
  manager_instance_type = var.manager_instance_type
  queues                = var.queues
  scaler                = var.scaler
  stack                 = var.stack
  task_logs             = var.task_logs
  dag_bundles           = var.dag_bundles
  database              = var.database
  backups               = var.backups
}
