################################################################################
# Boot script
################################################################################

output "script" {
  description = "The rendered boot script (bash). Use it as EC2 user_data or as the GCE `startup-script` metadata value."
  value       = local.script

  precondition {
    condition     = var.role == "manager" || var.queue != null
    error_message = "queue is required when role = \"worker\": set queue to the Celery queue this worker serves."
  }

  precondition {
    condition     = var.role == "worker" || var.manager_token_ref != null
    error_message = "manager_token_ref is required when role = \"manager\": set it to the SSM parameter name or secret id for the manager token."
  }

  precondition {
    condition     = var.role == "worker" || !var.spot
    error_message = "spot is only for role = \"worker\": managers run on on-demand capacity."
  }

  precondition {
    condition     = var.role == "manager" || var.stack == null
    error_message = "stack is only for role = \"manager\": leave it null for workers."
  }

  precondition {
    condition     = floor(length(local.user_data_base64) * 3 / 4) < 16384
    error_message = "The rendered script is over 16 KiB even gzip-compressed (EC2's user_data limit): shorten labels, stack.compose_override or stack.scaler_config."
  }
}

output "user_data_base64" {
  description = "The script gzip-compressed and base64-encoded, for EC2 `user_data_base64` / launch templates: EC2 takes 16 KiB of user data, cloud-init unpacks gzip."
  value       = local.user_data_base64
}

output "labels" {
  description = "The Docker engine labels the script writes to daemon.json (`airtasks.role`, `airtasks.cluster`, `airtasks.queue` for workers, plus `labels`)."
  value       = local._engine_labels
}
