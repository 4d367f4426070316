################################################################################
# Names
################################################################################

locals {
  name = "airtasks-${var.cluster_name}-${var.queue}" # <= 63 characters for valid inputs

  # GCE appends "-xxxx" to base names (at most 58 characters) and to template prefixes (at most 37).
  base_instance_name = replace(substr(local.name, 0, 58), "/-+$/", "")
  template_prefix    = "${replace(substr(local.name, 0, 36), "/-+$/", "")}-"

  labels = merge(var.gcp_labels, {
    airtasks-cluster = var.cluster_name
    airtasks-queue   = var.queue
    airtasks-role    = "worker"
  })
}

################################################################################
# Boot script (modules/swarm-boot): wait for the join information, join
################################################################################

module "boot" {
  source = "../../swarm-boot"

  cloud                = "gcp"
  role                 = "worker"
  cluster_name         = var.cluster_name
  queue                = var.queue
  project_id           = var.project_id
  worker_token_ref     = var.secret_ids.worker_token
  manager_token_ref    = var.secret_ids.manager_token # a name only: the VMs cannot read it
  manager_address_ref  = var.secret_ids.manager_address
  join_timeout_seconds = var.join_timeout_seconds
  labels               = var.labels
  docker_install       = var.docker_install
  spot                 = var.spot
}

################################################################################
# Regional managed instance group
#
# No autoscaler: the scaler sets the size (resize) and removes exact, drained
# instances (deleteInstances). GCP has no termination lifecycle hook, so the
# scaler drains a node in the Swarm before it deletes the instance.
################################################################################

resource "google_compute_region_instance_group_manager" "this" {
  project            = var.project_id
  name               = local.name
  description        = "Air-Tasks ${var.cluster_name}: workers of Celery queue ${var.queue}, sized by the scaler." # ForceNew: keep it constant
  region             = var.region
  base_instance_name = local.base_instance_name
  target_size        = var.min_size # only at creation: see ignore_changes
  wait_for_instances = false

  distribution_policy_zones = var.zones
  # Spot: go where there is capacity; on-demand: spread, but never move running VMs.
  distribution_policy_target_shape = var.spot ? "ANY" : "BALANCED"

  version {
    name              = "primary"
    instance_template = google_compute_instance_template.this.self_link_unique
  }

  # A new template reaches new VMs only; running ones (with running tasks) stay,
  # and the group never deletes VMs to even out zones.
  update_policy {
    type                         = "OPPORTUNISTIC"
    minimal_action               = "REPLACE"
    instance_redistribution_type = "NONE"
    max_surge_fixed              = length(var.zones)
    max_unavailable_fixed        = 0
  }

  lifecycle {
    ignore_changes = [target_size] # size belongs to the scaler, not to Terraform

    precondition {
      condition     = var.min_size <= var.max_size
      error_message = "min_size (${var.min_size}) must not exceed max_size (${var.max_size}) for queue ${var.queue}: lower min_size or raise max_size."
    }

    precondition {
      condition     = alltrue([for z in var.zones : startswith(z, "${var.region}-")])
      error_message = "zones must all be zones of region ${var.region} (e.g. \"${var.region}-b\"); fix zones or region."
    }
  }

  # VMs start reading the secrets at once.
  depends_on = [google_secret_manager_secret_iam_member.worker]
}
