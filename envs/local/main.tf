# The AWS cluster module against a local AWS API (moto): `make up` and the tests. The endpoint comes
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

module "cluster" {
  source = "../../modules/aws/cluster"

  cluster_name  = var.cluster_name
  region        = var.region
  vpc_cidr      = "10.30.0.0/16"
  ami_id        = var.ami_id
  manager_count = var.manager_count
  queues        = var.queues
  stack         = var.stack
  dag_bundles   = var.dag_bundles
  backups       = var.backups
  database      = var.database
  # The module puts a managed database into the private subnets; nothing else needs them here.
  private_subnets = try(var.database.managed, false)
  # moto answers over plain HTTP, and it enforces bucket policies: no TLS-only policy here.
  task_logs = var.task_logs == null ? null : merge(var.task_logs, { deny_insecure_transport = false })
  # Without a stack the scaler is the `make up` one on this machine: Airflow on 127.0.0.1, no
  # broker. With a stack (cluster in a box) it runs on the manager: the module's defaults.
  scaler = merge(var.scaler, var.stack != null ? {} : {
    airflow_url  = "http://127.0.0.1:${var.airflow_port}"
    rabbitmq_url = ""
  })
  # Small and cheap: nothing real boots against moto (the cluster in a box boots local VMs).
  ami_name_pattern         = "ubuntu/images/hvm-ssd*/ubuntu-*-amd64-server-*"
  manager_instance_type    = "t3.small"
  manager_root_volume_size = 8
  worker_root_volume_size  = 8
  elastic_ip               = false
}
