output "manager_address" {
  description = "Private address of the manager (its Swarm advertise address)."
  value       = module.manager.private_ip
}

output "manager_instance_id" {
  description = "Instance id of the manager."
  value       = module.manager.instance_id
}

output "manager_public_ip" {
  description = "Public address of the manager."
  value       = module.manager.public_ip
}

output "scaler_config" {
  description = "What the scaler reads (`terraform output -json scaler_config`): backend, region, load sources, and per queue its group, min, max and slots per node."
  value = {
    backend               = "aws"
    cluster_name          = var.cluster_name
    region                = var.region
    project               = null
    interval_seconds      = var.scaler.interval_seconds
    stabilization_seconds = var.scaler.stabilization_seconds
    idle_seconds          = var.scaler.idle_seconds
    sources = {
      airflow  = { url = var.scaler.airflow_url }
      rabbitmq = { url = var.scaler.rabbitmq_url, vhost = var.scaler.rabbitmq_vhost }
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

output "web_url" {
  description = "Where the Airflow UI is (HTTPS via the proxy on the manager; reachable from `web_cidrs`)."
  value       = module.manager.public_ip == null || module.manager.public_ip == "" ? null : "https://${module.manager.public_ip}/"
}

output "worker_groups" {
  description = "Auto Scaling group name per queue."
  value       = { for q, w in module.workers : q => w.group_name }
}
