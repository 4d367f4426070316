################################################################################
# Secret Manager secrets for the Swarm join information
#
# Terraform creates the secrets only; the manager's boot script adds their
# versions (the tokens, the address). State never holds a token.
################################################################################

locals {
  secrets = {
    worker_token    = "airtasks-${var.cluster_name}-worker-token"
    manager_token   = "airtasks-${var.cluster_name}-manager-token"
    manager_address = "airtasks-${var.cluster_name}-manager-address"
  }
}

resource "google_secret_manager_secret" "this" {
  for_each  = local.secrets
  project   = var.project_id
  secret_id = each.value
  labels    = merge(local.labels, { airtasks-role = "swarm-join" })

  replication {
    auto {}
  }
}
