output "manager_address" {
  description = "Private address of the first manager (its Swarm advertise address)."
  value       = module.manager.private_ip
}

output "manager_group" {
  description = "Auto Scaling group of the managers (1, 3 or 5; a lost manager is replaced from it)."
  value       = module.manager.group_name
}

output "manager_instance_id" {
  description = "Instance id of the first manager."
  value       = module.manager.instance_id
}

output "manager_public_ip" {
  description = "Public address of the first manager, or null."
  value       = module.manager.public_ip
}

output "scaler_config" {
  description = "What the scaler reads (`terraform output -json scaler_config`): backend, region, load sources, and per queue its group, min, max, slots per node and whether it pre-scales."
  value       = local.scaler_config
}

output "ssm_parameters" {
  description = "Names (never values) of the SSM parameters holding the Swarm join info."
  value = {
    worker_token    = module.manager.worker_token_parameter
    manager_token   = module.manager.manager_token_parameter
    manager_address = module.manager.manager_address_parameter
  }
}

output "task_logs" {
  description = "Where task logs are kept: `bucket`, `prefix`, `url` (Airflow's remote base log folder) and `retention_days`; null when `task_logs = null`."
  value = var.task_logs == null ? null : {
    bucket         = local.task_logs_bucket
    prefix         = "${local.task_logs_prefix}/"
    url            = local.task_logs_url
    retention_days = var.task_logs.retention_days
  }
}

output "vpc_id" {
  description = "Id of the cluster's VPC."
  value       = module.network.vpc_id
}

output "web_url" {
  description = "Where the Airflow UI is (HTTPS via the proxy on the manager; reachable from `web_cidrs`), or null without a public address."
  value       = module.manager.public_ip == null || module.manager.public_ip == "" ? null : "https://${module.manager.public_ip}/"
}

output "worker_groups" {
  description = "Auto Scaling group name per queue."
  value       = { for q, w in module.workers : q => w.group_name }
}

output "dag_bundles" {
  description = "Your DAG bundles: `bucket` (the cluster's bucket, or null without one) and `upload`: per bucket bundle, the command that copies a local `dags/` folder to its prefix, with your own credentials (the nodes may only read it)."
  value = {
    bucket = local.bucket_on ? local.bucket_name : null
    upload = module.dag_bundles.upload
  }
}

output "database" {
  description = "The managed PostgreSQL (`database.managed`): `address`, `port`, `name`, `user` and `secret_arn`, the Secrets Manager secret RDS keeps the password in (never the password; read it with your own credentials, e.g. for pg_restore); null with the stack's own PostgreSQL."
  value = local.database_on ? {
    address    = aws_db_instance.this[0].address
    port       = aws_db_instance.this[0].port
    name       = local.database_db
    user       = local.database_user
    secret_arn = aws_db_instance.this[0].master_user_secret[0].secret_arn
  } : null
}

output "backups" {
  description = "Where the metadata database's backups go: `bucket`, `prefix`, `url` (what the manager's `db-backup` service writes to), `every_minutes` and `retention_days`; null when `backups = null` or with `database.managed` (RDS keeps its own)."
  value = local.backups_on ? {
    bucket         = local.bucket_name
    prefix         = "${local.backups_prefix}/"
    url            = local.backups_url
    every_minutes  = var.backups.every_minutes
    retention_days = var.backups.retention_days
  } : null
}
