output "manager_address" {
  description = "Private address of the (simulated) manager."
  value       = module.manager.private_ip
}

output "manager_instance_id" {
  description = "Instance id of the (simulated) manager."
  value       = module.manager.instance_id
}

output "scaler_config" {
  description = "What the scaler reads: same shape as envs/aws, Airflow on 127.0.0.1:<airflow_port>, no broker source."
  value = {
    backend               = "aws"
    cluster_name          = var.cluster_name
    region                = var.region
    project               = null
    interval_seconds      = var.scaler.interval_seconds
    stabilization_seconds = var.scaler.stabilization_seconds
    idle_seconds          = var.scaler.idle_seconds
    sources = {
      airflow  = { url = "http://127.0.0.1:${var.airflow_port}" }
      rabbitmq = null
    }
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
