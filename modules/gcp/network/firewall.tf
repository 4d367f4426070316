################################################################################
# Firewall
#
# GCP VPCs deny ingress by default; these rules are the only ways in.
# Swarm ports never leave the subnet range.
################################################################################

locals {
  ssh_ranges = distinct(concat(var.admin_cidrs, var.ssh_from_iap ? [local.iap_range] : []))
}

resource "google_compute_firewall" "swarm" {
  project       = var.project_id
  name          = "${local.name}-swarm"
  description   = "Docker Swarm between nodes: 2377/tcp management, 7946/tcp+udp gossip, 4789/udp overlay (VXLAN)."
  network       = google_compute_network.this.id
  direction     = "INGRESS"
  source_ranges = [var.subnet_cidr]
  target_tags   = [local.tags.node]

  allow {
    protocol = "tcp"
    ports    = ["2377", "7946"]
  }

  allow {
    protocol = "udp"
    ports    = ["7946", "4789"]
  }
}

resource "google_compute_firewall" "ssh" {
  count         = length(local.ssh_ranges) > 0 ? 1 : 0
  project       = var.project_id
  name          = "${local.name}-ssh"
  description   = "SSH from admin_cidrs${var.ssh_from_iap ? " and IAP" : ""}."
  network       = google_compute_network.this.id
  direction     = "INGRESS"
  source_ranges = local.ssh_ranges
  target_tags   = [local.tags.node]

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
}

resource "google_compute_firewall" "web" {
  count         = length(var.web_cidrs) > 0 ? 1 : 0
  project       = var.project_id
  name          = "${local.name}-web"
  description   = "HTTPS to the manager's proxy (Airflow UI, Flower) from web_cidrs."
  network       = google_compute_network.this.id
  direction     = "INGRESS"
  source_ranges = var.web_cidrs
  target_tags   = [local.tags.manager]

  allow {
    protocol = "tcp"
    ports    = ["443"]
  }
}
