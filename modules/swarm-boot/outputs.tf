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
    condition     = var.role == "manager" || var.stack == null
    error_message = "stack is only for role = \"manager\": leave it null for workers."
  }

  precondition {
    condition     = length(local.script) < 65536
    error_message = "The rendered script is over 64 KiB: shorten labels, stack.compose_override or stack.scaler_config."
  }
}

output "user_data_base64" {
  description = "The script gzipped and base64-encoded (cloud-init runs gzipped user data): EC2 `user_data_base64`, under its 16 KiB limit where the plain script (a manager's, with its stack settings) may not be."
  value       = base64gzip(local.script)

  precondition {
    condition     = length(base64gzip(local.script)) * 3 / 4 < 16384
    error_message = "The gzipped script is over 16 KiB, EC2's user_data limit: shorten labels, stack.compose_override or stack.scaler_config."
  }
}

output "labels" {
  description = "The Docker engine labels the script writes to daemon.json (`airtasks.role`, `airtasks.cluster`, `airtasks.queue` for workers, plus `labels`)."
  value       = local._engine_labels
}
