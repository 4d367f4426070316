################################################################################
# Your DAG bundles (var.dag_bundles, docs/dag-bundles.md), checked and rendered
# by modules/dag-bundles: the manager's boot script renders them into the stack
# as Airflow's [dag_processor] dag_bundle_config_list.
#
# Bucket bundles read folders of a DAG bucket of the cluster's own, apart from
# the log bucket (task_logs.tf), unlike on AWS: Cloud Storage grants a role on a
# whole bucket (narrower grants need IAM Conditions), and every node may create
# and replace objects in the log bucket, so DAGs there would be writable by any
# node; the log bucket is also unversioned on purpose, where an uploaded DAG's
# earlier versions are worth keeping.
################################################################################

module "dag_bundles" {
  source = "../../dag-bundles"

  cloud       = "gcp"
  dag_bundles = var.dag_bundles
  bucket      = local.dag_bucket
}

locals {
  dag_bucket_bundles = module.dag_bundles.bucket_prefixes
  # Bucket names are global; the project id keeps this one apart (as the log bucket's).
  dag_bucket    = "${var.project_id}-airtasks-${var.cluster_name}-dags"
  dag_bucket_on = length(local.dag_bucket_bundles) > 0
  # Every node reads: the dag-processor and the API server on the managers parse the bundles,
  # and each worker loads the bundle of the task it runs. "manager" is a reserved queue name.
  dag_readers = local.dag_bucket_on ? concat(keys(var.queues), ["manager"]) : []
}

resource "google_storage_bucket" "dags" {
  #checkov:skip=CKV_GCP_62:access logging would need a second bucket; Cloud Audit Logs data access logs cover it where wanted
  count = local.dag_bucket_on ? 1 : 0

  project  = var.project_id
  name     = local.dag_bucket
  location = var.region

  uniform_bucket_level_access = true # IAM only, no object ACLs
  public_access_prevention    = "enforced"

  # An overwritten or deleted DAG file stays restorable.
  versioning {
    enabled = true
  }

  labels = {
    airtasks-cluster = var.cluster_name
    airtasks-role    = "dags"
  }

  lifecycle {
    precondition {
      condition     = length(local.dag_bucket) <= 63
      error_message = "dag_bundles: the bucket name \"${local.dag_bucket}\" has ${length(local.dag_bucket)} characters, Cloud Storage allows 63; use a shorter cluster_name."
    }
  }
}

# Read only: no node may create, replace or delete a DAG; you upload with your own credentials.
resource "google_storage_bucket_iam_member" "dags_read" {
  for_each = toset(local.dag_readers)

  bucket = google_storage_bucket.dags[0].name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${each.key == "manager" ? module.manager.service_account : module.workers[each.key].service_account}"
}

# Private repositories: the managers read the named secrets at boot (`airtasks secrets create
# --git-credential`) and hand each value to the stack as a Swarm secret. secretAccessor on exactly
# those secrets, for the managers' service account only; nothing without a credential. A secret
# named in full (projects/P/secrets/ID) may live in another project.
resource "google_secret_manager_secret_iam_member" "git_credentials" {
  for_each = module.dag_bundles.git_credentials

  project   = startswith(each.value, "projects/") ? split("/", each.value)[1] : var.project_id
  secret_id = startswith(each.value, "projects/") ? split("/", each.value)[3] : each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${module.manager.service_account}"
}
