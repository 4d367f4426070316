output "manager_address" {
  description = "Private address of the (simulated) manager."
  value       = module.manager.private_ip
}

output "manager_group" {
  description = "Auto Scaling group of the (simulated) managers."
  value       = module.manager.group_name
}

output "manager_instance_id" {
  description = "Instance id of the (simulated) manager."
  value       = module.manager.instance_id
}

output "scaler_config" {
  description = "What the scaler reads: same shape as envs/aws. Without `stack`: Airflow on 127.0.0.1:<airflow_port> (`make up`), no broker source; with `stack`: the stack's internal service names (the scaler runs on the manager)."
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

output "worker_groups" {
  description = "Auto Scaling group name per queue."
  value       = { for q, w in module.workers : q => w.group_name }
}
