################################################################################
# Zones, pinned
################################################################################

# With `zones = []` the region's zones are read once and pinned in state: the data source runs on
# every plan, and a zone that is down at plan time (or a zone Google adds later) would otherwise
# change the MIGs' `distribution_policy_zones` (which forces new MIGs) and move manager 0.
data "google_compute_zones" "available" {
  count   = length(var.zones) == 0 ? 1 : 0
  project = var.project_id
  region  = var.region
  status  = "UP"
}

# The zones the cluster was first applied with. `ignore_changes = [input]` keeps `output` as
# created, whatever the data source says later; set `zones` to change them on purpose.
resource "terraform_data" "zones" {
  input = length(var.zones) > 0 ? var.zones : sort(data.google_compute_zones.available[0].names)

  lifecycle {
    ignore_changes = [input]
  }
}

locals {
  # Explicit `zones` win; otherwise the pinned set. Nothing places a VM from the data source itself.
  zones = length(var.zones) > 0 ? var.zones : terraform_data.zones.output
}
