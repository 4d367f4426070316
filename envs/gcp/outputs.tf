################################################################################
# Scaler
################################################################################

output "scaler_config" {
  description = "What the scaler reads (`airtasks scale --config`): backend `gcp`, project, region, and per queue its MIG, min, max, slots_per_node."
  value       = module.cluster.scaler_config
}

################################################################################
# Manager
################################################################################

output "manager_address" {
  description = "Internal address of the manager (its Swarm advertise address)."
  value       = module.cluster.manager_address
}

output "manager_name" {
  description = "Name of the manager VM, for `gcloud compute ssh`."
  value       = module.cluster.manager_name
}

output "manager_public_ip" {
  description = "Static external IP of the manager (point your DNS name at it); `null` without one."
  value       = module.cluster.manager_public_ip
}

output "manager_zone" {
  description = "Zone of the manager VM."
  value       = module.cluster.manager_zone
}

output "web_url" {
  description = "URL of the Airflow UI behind the manager's HTTPS proxy."
  value       = module.cluster.web_url
}

################################################################################
# Secrets (ids only, never values)
################################################################################

output "secret_ids" {
  description = "Secret Manager secret ids holding the Swarm worker token, manager token and manager address (values are written by the manager at boot)."
  value       = module.cluster.secret_ids
}

################################################################################
# Task logs
################################################################################

output "task_logs" {
  description = "Where task logs are kept: `bucket`, `prefix` (`logs/`), `url` (Airflow's remote base log folder, `gs://<bucket>/logs`) and `retention_days`; `null` when `task_logs = null`."
  value       = module.cluster.task_logs
}

################################################################################
# Worker groups
################################################################################

output "worker_groups" {
  description = "Regional MIG name per queue."
  value       = module.cluster.worker_groups
}

output "dag_bundles" {
  description = "Your DAG bundles: `bucket` (the cluster's DAG bucket, or null) and, per bucket bundle, the command that uploads a local `dags/` folder to its prefix."
  value       = module.cluster.dag_bundles
}

output "backups" {
  description = "Where the metadata database's dumps go: `bucket` (the backups' own), `prefix` (`backups/`), `url`, `every_minutes`, `retention_days`; `null` when `backups = null` or with `database.managed`."
  value       = module.cluster.backups
}

output "database" {
  description = "The managed PostgreSQL (`database.managed`): `instance`, `connection_name`, `address` (private IP), `port`, `name`, `user` and `secret_name`, the Secret Manager secret with the password (never the password); null with the stack's own PostgreSQL."
  value       = module.cluster.database
}
