################################################################################
# Instance template
################################################################################

resource "google_compute_instance_template" "this" {
  project     = var.project_id
  name_prefix = local.template_prefix
  description = "Air-Tasks ${var.cluster_name} worker, queue ${var.queue}${var.spot ? " (Spot)" : ""}."

  machine_type = var.machine_type
  tags         = var.network_tags
  labels       = local.labels

  disk {
    boot         = true
    auto_delete  = true
    source_image = var.boot_disk.image
    disk_size_gb = var.boot_disk.size_gb
    disk_type    = var.boot_disk.type
    labels       = local.labels
  }

  # No access_config: no public IP; egress through Cloud NAT.
  network_interface {
    subnetwork = var.subnetwork
  }

  scheduling {
    provisioning_model          = var.spot ? "SPOT" : "STANDARD"
    preemptible                 = var.spot
    automatic_restart           = !var.spot
    on_host_maintenance         = var.spot ? "TERMINATE" : "MIGRATE"
    instance_termination_action = var.spot ? "DELETE" : null
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  # Its own service account (iam.tf), never the Compute Engine default one.
  service_account {
    email  = google_service_account.worker.email
    scopes = ["cloud-platform"]
  }

  metadata = {
    startup-script         = module.boot.script # names of secrets only, never a token
    enable-oslogin         = "TRUE"
    block-project-ssh-keys = "TRUE"
  }

  lifecycle {
    create_before_destroy = true # the MIG always points at an existing template
  }
}
