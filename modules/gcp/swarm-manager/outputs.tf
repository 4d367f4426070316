################################################################################
# Manager VM
################################################################################

output "external_ip" {
  description = "Static external IP of the manager (`null` when `external_ip = false`)."
  value       = var.external_ip ? google_compute_address.manager[0].address : null
}

output "instance" {
  description = "Self link of the manager VM."
  value       = google_compute_instance.manager[0].self_link
}

output "internal_ip" {
  description = "Internal IP of the manager; workers join the Swarm at `<internal_ip>:2377`."
  value       = google_compute_instance.manager[0].network_interface[0].network_ip
}

output "internal_ips" {
  description = "Internal IPs of all manager VMs, in the order of `names`."
  value       = google_compute_instance.manager[*].network_interface[0].network_ip
}

output "name" {
  description = "Name (and hostname, Swarm node name) of the first manager VM (it initialises the Swarm)."
  value       = google_compute_instance.manager[0].name
}

output "names" {
  description = "Names of all manager VMs (`manager_count`), the first one first."
  value       = google_compute_instance.manager[*].name
}

output "web_url" {
  description = "URL of the manager's HTTPS proxy (Airflow UI)."
  value = (
    var.external_ip
    ? "https://${google_compute_address.manager[0].address}/"
    : "https://${google_compute_instance.manager[0].network_interface[0].network_ip}/"
  )
}

output "zone" {
  description = "Zone of the manager VM."
  value       = google_compute_instance.manager[0].zone
}

################################################################################
# Secrets (ids only, never values)
################################################################################

output "secret_ids" {
  description = "Secret Manager secret ids: `worker_token`, `manager_token`, `manager_address`. Pass `worker_token` and `manager_address` to `worker-group`."
  value       = { for k, s in google_secret_manager_secret.this : k => s.secret_id }
}

################################################################################
# Service account
################################################################################

output "service_account" {
  description = "Email of the manager's service account (publishes the secrets, runs the scaler)."
  value       = google_service_account.manager.email
}

output "scaler_role" {
  description = "Id of the custom role the scaler runs with (`projects/<p>/roles/airtasks_<cluster>_scaler`)."
  value       = google_project_iam_custom_role.scaler.name
}
