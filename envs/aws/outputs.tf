output "manager_address" {
  description = "Private address of the manager (its Swarm advertise address)."
  value       = module.cluster.manager_address
}

output "manager_group" {
  description = "Auto Scaling group of the managers (1, 3 or 5; a lost manager is replaced from it)."
  value       = module.cluster.manager_group
}

output "manager_instance_id" {
  description = "Instance id of the manager."
  value       = module.cluster.manager_instance_id
}

output "manager_public_ip" {
  description = "Public address of the manager."
  value       = module.cluster.manager_public_ip
}

output "scaler_config" {
  description = "What the scaler reads (`terraform output -json scaler_config`): backend, region, load sources, and per queue its group, min, max and slots per node."
  value       = module.cluster.scaler_config
}

output "ssm_parameters" {
  description = "Names (never values) of the SSM parameters holding the Swarm join info."
  value       = module.cluster.ssm_parameters
}

output "web_url" {
  description = "Where the Airflow UI is (HTTPS via the proxy on the manager; reachable from `web_cidrs`)."
  value       = module.cluster.web_url
}

output "worker_groups" {
  description = "Auto Scaling group name per queue."
  value       = module.cluster.worker_groups
}

output "task_logs" {
  description = "Where task logs are kept (`bucket`, `prefix`, `url`, `retention_days`), or null."
  value       = module.cluster.task_logs
}

output "dag_bundles" {
  description = "Your DAG bundles: `bucket` (the cluster's bucket, or null) and, per bucket bundle, the command that uploads a local `dags/` folder to its prefix."
  value       = module.cluster.dag_bundles
}

output "backups" {
  description = "Where the metadata database's dumps go (`bucket`, `prefix`, `url`, `every_minutes`, `retention_days`), or null."
  value       = module.cluster.backups
}
