################################################################################
# Names
################################################################################

locals {
  name   = "airtasks-${var.cluster_name}-manager"
  region = regex("^(.+)-[a-z]$", var.zone)[0]

  # manager_count VMs: the first keeps the plain name (and initialises the Swarm), the others
  # are -1, -2, ... spread over `zones` (default: all in `zone`).
  names = [for i in range(var.manager_count) : i == 0 ? local.name : "${local.name}-${i}"]
  zones = [for i in range(var.manager_count) : length(var.zones) > 0 ? var.zones[i % length(var.zones)] : var.zone]

  labels = merge(var.gcp_labels, {
    airtasks-cluster = var.cluster_name
    airtasks-role    = "manager"
  })
}

################################################################################
# Boot script (modules/swarm-boot): init the Swarm, publish the join
# information to the secrets in secrets.tf, deploy the stack.
################################################################################

module "boot" {
  source = "../../swarm-boot"

  cloud               = "gcp"
  role                = "manager"
  cluster_name        = var.cluster_name
  project_id          = var.project_id
  worker_token_ref    = google_secret_manager_secret.this["worker_token"].secret_id
  manager_token_ref   = google_secret_manager_secret.this["manager_token"].secret_id
  manager_address_ref = google_secret_manager_secret.this["manager_address"].secret_id
  manager_count       = var.manager_count
  init_manager        = local.names[0]
  labels              = var.labels
  docker_install      = var.docker_install
  stack               = var.stack
}

################################################################################
# Manager VMs (manager_count: 1, 3 or 5; the first one has the external IP)
################################################################################

resource "google_compute_address" "manager" {
  count        = var.external_ip ? 1 : 0
  project      = var.project_id
  name         = local.name
  region       = local.region
  address_type = "EXTERNAL"
}

resource "google_compute_instance" "manager" {
  #checkov:skip=CKV_GCP_38:customer-supplied keys would be raw key material in Terraform state; disks are encrypted at rest by Google
  #checkov:skip=CKV_GCP_40:the manager serves the UI behind its HTTPS proxy; external_ip = false leaves it internal only
  count        = var.manager_count
  project      = var.project_id
  name         = local.names[count.index] # also the hostname, hence the Swarm node name
  zone         = local.zones[count.index]
  machine_type = var.machine_type
  tags         = var.network_tags
  labels       = local.labels

  allow_stopping_for_update = true

  boot_disk {
    auto_delete = true

    initialize_params {
      image  = var.boot_disk.image
      size   = var.boot_disk.size_gb
      type   = var.boot_disk.type
      labels = local.labels
    }
  }

  network_interface {
    subnetwork = var.subnetwork

    dynamic "access_config" {
      for_each = var.external_ip && count.index == 0 ? [google_compute_address.manager[0].address] : []
      content {
        nat_ip = access_config.value
      }
    }
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  scheduling {
    automatic_restart   = true
    on_host_maintenance = "MIGRATE"
    provisioning_model  = "STANDARD"
  }

  # Its own service account (iam.tf), never the Compute Engine default one.
  # Scope cloud-platform: what it may do is decided by IAM alone.
  service_account {
    email  = google_service_account.manager.email
    scopes = ["cloud-platform"]
  }

  metadata = {
    startup-script         = module.boot.script # names of secrets only, never a token
    enable-oslogin         = "TRUE"
    block-project-ssh-keys = "TRUE"
  }

  # The boot script writes the secrets as soon as the VM starts.
  depends_on = [google_secret_manager_secret_iam_member.manager]
}

moved {
  from = google_compute_instance.manager
  to   = google_compute_instance.manager[0]
}
