################################################################################
# Service account of the group's VMs: read the worker token and the manager
# address, nothing else (no project role, no manager token).
################################################################################

locals {
  # Service account ids are 6-30 characters: a readable stem plus a hash that
  # keeps long cluster/queue pairs apart.
  service_account_id = join("-", [
    replace(substr("${var.cluster_name}-${var.queue}", 0, 21), "/-+$/", ""),
    substr(sha1("${var.cluster_name}/${var.queue}"), 0, 8),
  ])

  readable_secrets = {
    worker_token    = var.secret_ids.worker_token
    manager_address = var.secret_ids.manager_address
  }
}

resource "google_service_account" "worker" {
  project      = var.project_id
  account_id   = local.service_account_id
  display_name = "Air-Tasks ${var.cluster_name} worker (${var.queue})"
  description  = "Workers of queue ${var.queue} in Air-Tasks cluster ${var.cluster_name}: read the Swarm worker token and manager address."
}

resource "google_secret_manager_secret_iam_member" "worker" {
  for_each  = local.readable_secrets
  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.worker.email}"
}
