################################################################################
# Names
################################################################################

locals {
  name = "airtasks-${var.cluster_name}"

  # Network tags the node modules put on their VMs; the firewall rules target them.
  tags = {
    node    = "${local.name}-node"
    manager = "${local.name}-manager"
  }

  # Google's IAP TCP-forwarding range (gcloud compute ssh --tunnel-through-iap).
  iap_range = "35.235.240.0/20"
}

################################################################################
# VPC and subnet
################################################################################

resource "google_compute_network" "this" {
  project                 = var.project_id
  name                    = local.name
  description             = "Air-Tasks cluster ${var.cluster_name}"
  auto_create_subnetworks = false # custom mode: only the subnet below
  routing_mode            = "REGIONAL"

  # Docker's overlay networks (Swarm ingress and the stack's) carry 1450-byte packets and VXLAN
  # adds 50 bytes: 1500 on the wire, over GCP's default VPC MTU of 1460. 1500 fits them, is what
  # the internet takes, and leaves every overlay at Docker's default (see the README).
  mtu = 1500
}

resource "google_compute_subnetwork" "this" {
  project       = var.project_id
  name          = local.name
  region        = var.region
  network       = google_compute_network.this.id
  ip_cidr_range = var.subnet_cidr

  # Nodes without public IPs still reach Secret Manager and Compute Engine APIs.
  private_ip_google_access = true

  # Sampled flow logs (half the flows, 10-minute aggregation): an audit trail at a small cost.
  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

################################################################################
# Cloud NAT: egress for VMs without public IPs (Docker packages, images)
################################################################################

resource "google_compute_router" "this" {
  project = var.project_id
  name    = local.name
  region  = var.region
  network = google_compute_network.this.id
}

resource "google_compute_router_nat" "this" {
  project                            = var.project_id
  name                               = local.name
  region                             = var.region
  router                             = google_compute_router.this.name
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"

  subnetwork {
    name                    = google_compute_subnetwork.this.id
    source_ip_ranges_to_nat = ["ALL_IP_RANGES"]
  }

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}
