################################################################################
# Names
################################################################################

locals {
  name   = "airtasks-${var.cluster_name}-manager"
  region = regex("^(.+)-[a-z]$", var.zone)[0]

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
  labels              = var.labels
  docker_install      = var.docker_install
  stack               = var.stack
}

################################################################################
# Manager VM
################################################################################

resource "google_compute_address" "manager" {
  count        = var.external_ip ? 1 : 0
  project      = var.project_id
  name         = local.name
  region       = local.region
  address_type = "EXTERNAL"
}

resource "google_compute_instance" "manager" {
  project      = var.project_id
  name         = local.name # also the hostname, hence the Swarm node name
  zone         = var.zone
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
      for_each = var.external_ip ? [google_compute_address.manager[0].address] : []
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
