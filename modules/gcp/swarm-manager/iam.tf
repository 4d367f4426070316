################################################################################
# Service account of the manager VM
################################################################################

resource "google_service_account" "manager" {
  project      = var.project_id
  account_id   = "${var.cluster_name}-manager" # 6-30 characters for any valid cluster_name
  display_name = "Air-Tasks ${var.cluster_name} manager"
  description  = "Swarm manager of Air-Tasks cluster ${var.cluster_name}: publishes join secrets, resizes this cluster's worker MIGs."
}

################################################################################
# Secrets: add versions (publish) and read them back (idempotent re-runs),
# granted on the three secrets only, not on the project.
################################################################################

locals {
  secret_roles = ["roles/secretmanager.secretVersionAdder", "roles/secretmanager.secretAccessor"]

  _secret_grants = {
    for pair in setproduct(keys(local.secrets), local.secret_roles) :
    "${pair[0]}/${pair[1]}" => { secret = pair[0], role = pair[1] }
  }
}

resource "google_secret_manager_secret_iam_member" "manager" {
  for_each  = local._secret_grants
  project   = var.project_id
  secret_id = google_secret_manager_secret.this[each.value.secret].secret_id
  role      = each.value.role
  member    = "serviceAccount:${google_service_account.manager.email}"
}

################################################################################
# Scaler: resize this cluster's worker MIGs and delete instances in them
#
# A custom role with just what the scaler calls (glue/airtasks/backends/gcp.py:
# get, listManagedInstances, resize, deleteInstances, wait for the region
# operation, and instances.get for a VM's creation time, which the managed-
# instance listing does not carry), bound with an IAM condition that limits MIGs
# and VMs to names starting with airtasks-<cluster>-. See the README for what the
# condition cannot narrow. tests/integration/test_gcp_permissions.py maps each
# API call the backend makes to its permission and checks it is here.
################################################################################

locals {
  scaler_permissions = [
    "compute.instanceGroupManagers.get",    # get, listManagedInstances
    "compute.instanceGroupManagers.update", # resize, deleteInstances
    "compute.instances.get",                # a managed VM's creationTimestamp
    "compute.regionOperations.get",         # wait for resize / deleteInstances
  ]
  mig_prefix = "airtasks-${var.cluster_name}-"
}

resource "google_project_iam_custom_role" "scaler" {
  project     = var.project_id
  role_id     = "airtasks_${replace(var.cluster_name, "-", "_")}_scaler"
  title       = "Air-Tasks ${var.cluster_name} scaler"
  description = "Resize the worker MIGs of Air-Tasks cluster ${var.cluster_name} and delete drained instances in them."
  permissions = local.scaler_permissions
}

resource "google_project_iam_member" "scaler" {
  project = var.project_id
  role    = google_project_iam_custom_role.scaler.name
  member  = "serviceAccount:${google_service_account.manager.email}"

  # A MIG or a VM passes only when its name starts with airtasks-<cluster>- (the
  # worker VMs are named after their MIG); region operations, whose names carry
  # neither, pass.
  condition {
    title       = "airtasks-${var.cluster_name} MIGs and VMs only"
    description = "Instance group managers and instances named ${local.mig_prefix}* only."
    expression  = <<-CEL
      (resource.name.extract("/instanceGroupManagers/{name}") == "" ||
        resource.name.extract("/instanceGroupManagers/{name}").startsWith("${local.mig_prefix}")) &&
      (resource.name.extract("/instances/{name}") == "" ||
        resource.name.extract("/instances/{name}").startsWith("${local.mig_prefix}"))
    CEL
  }
}
