# A thin root: one call of modules/gcp/cluster, which holds the wiring, the validations and the
# zone pinning; the provider is in providers.tf. The variables here are the user-facing interface.
module "cluster" {
  source = "../../modules/gcp/cluster"

  project_id           = var.project_id
  region               = var.region
  zones                = var.zones
  cluster_name         = var.cluster_name
  subnet_cidr          = var.subnet_cidr
  admin_cidrs          = var.admin_cidrs
  ssh_from_iap         = var.ssh_from_iap
  web_cidrs            = var.web_cidrs
  image                = var.image
  manager_count        = var.manager_count
  manager_machine_type = var.manager_machine_type
  queues               = var.queues
  scaler               = var.scaler
  stack                = var.stack
  task_logs            = var.task_logs
  dag_bundles          = var.dag_bundles
  backups              = var.backups
  database             = var.database
}
