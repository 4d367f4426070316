################################################################################
# Your DAG bundles (var.dag_bundles, docs/dag-bundles.md), checked by
# modules/dag-bundles, once for both clouds.
################################################################################

module "dag_bundles" {
  source = "../../dag-bundles"

  cloud       = "aws"
  dag_bundles = var.dag_bundles
  region      = var.region
}
