################################################################################
# Regional managed instance group
################################################################################

output "instance_group" {
  description = "Self link of the instance group the MIG manages (list its VMs)."
  value       = google_compute_region_instance_group_manager.this.instance_group
}

output "max_size" {
  description = "Most VMs the scaler may run (for `scaler_config`)."
  value       = var.max_size
}

output "min_size" {
  description = "Fewest VMs the scaler keeps (for `scaler_config`)."
  value       = var.min_size
}

output "name" {
  description = "Name of the regional MIG, `airtasks-<cluster>-<queue>`: the scaler's `group` for this queue."
  value       = google_compute_region_instance_group_manager.this.name
}

output "region" {
  description = "Region of the MIG."
  value       = google_compute_region_instance_group_manager.this.region
}

output "self_link" {
  description = "Self link of the regional MIG."
  value       = google_compute_region_instance_group_manager.this.self_link
}

################################################################################
# Instance template
################################################################################

output "instance_template" {
  description = "Self link of the current instance template."
  value       = google_compute_instance_template.this.self_link_unique
}

################################################################################
# Service account
################################################################################

output "service_account" {
  description = "Email of the VMs' service account (may read the worker token and manager address only)."
  value       = google_service_account.worker.email
}
