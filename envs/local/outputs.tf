output "manager_address" {
  description = "Private address of the (simulated) manager."
  value       = module.cluster.manager_address
}

output "manager_group" {
  description = "Auto Scaling group of the (simulated) managers."
  value       = module.cluster.manager_group
}

output "manager_instance_id" {
  description = "Instance id of the (simulated) manager."
  value       = module.cluster.manager_instance_id
}

output "scaler_config" {
  description = "What the scaler reads: same shape as envs/aws. Without `stack`: Airflow on 127.0.0.1:<airflow_port> (`make up`), no broker source; with `stack`: the stack's internal service names (the scaler runs on the manager)."
  value       = module.cluster.scaler_config
}

output "ssm_parameters" {
  description = "Names (never values) of the SSM parameters holding the Swarm join info."
  value       = module.cluster.ssm_parameters
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
  description = "Your DAG bundles: `bucket` (the cluster's bucket in the local AWS API, or null) and, per bucket bundle, the command that uploads a local `dags/` folder to its prefix (with AWS_ENDPOINT_URL pointing at the local endpoint)."
  value       = module.cluster.dag_bundles
}

output "backups" {
  description = "Where the metadata database's dumps go (`bucket`, `prefix`, `url`, `every_minutes`, `retention_days`), or null."
  value       = module.cluster.backups
}

output "database" {
  description = "The managed PostgreSQL (`database.managed`): `address`, `port`, `name`, `user` and `secret_arn` (never the password); null with the stack's own PostgreSQL."
  value       = module.cluster.database
}
