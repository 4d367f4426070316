################################################################################
# VPC and subnet
################################################################################

output "network" {
  description = "Self link of the VPC."
  value       = google_compute_network.this.self_link
}

output "subnet_cidr" {
  description = "Primary range of the subnet (the only source the Swarm ports accept)."
  value       = google_compute_subnetwork.this.ip_cidr_range
}

output "subnetwork" {
  description = "Self link of the regional subnet; pass it to `swarm-manager` and `worker-group`."
  value       = google_compute_subnetwork.this.self_link
}

################################################################################
# Firewall
################################################################################

output "tags" {
  description = "Network tags the firewall rules target: `node` (every Swarm node) and `manager` (the manager only, HTTPS)."
  value       = local.tags
}
