################################################################################
# Task logs: Airflow writes each task's log to a bucket of the cluster's own
#
# Airflow's GCS log IO (apache-airflow-providers-google, GCSRemoteLogIO) works
# like this: a worker downloads the attempt's log object, if there is one, to
# append to it, then uploads the whole text again (write); the API server lists
# the attempt's objects and downloads them (read). The nodes sign with their
# service account through the metadata server: no key, nothing in state.
################################################################################

locals {
  # Known at plan time (the manager's boot script carries the URL). Bucket names are global; the
  # project id (itself globally unique) keeps this one apart from other projects' clusters.
  task_logs_bucket = "${var.project_id}-airtasks-${var.cluster_name}-logs"
  task_logs_prefix = "logs"
  task_logs_url    = var.task_logs == null ? null : "gs://${local.task_logs_bucket}/${local.task_logs_prefix}"

  # Every node writes: objectCreator creates a log, objectViewer reads it back to append (and lets
  # the API server list and read logs to show them). The managers too: they run the `manager`
  # queue's worker (the scaler DAG) and the triggerer, whose logs are task logs as well.
  # "manager" is a reserved queue name, so it cannot clash with a queue.
  task_logs_nodes        = var.task_logs == null ? [] : concat(keys(var.queues), ["manager"])
  task_logs_writer_roles = ["roles/storage.objectCreator", "roles/storage.objectViewer"]
  task_logs_writers = {
    for pair in setproduct(local.task_logs_nodes, local.task_logs_writer_roles) :
    "${pair[0]}/${pair[1]}" => { node = pair[0], role = pair[1] }
  }
}

resource "google_storage_bucket" "logs" {
  #checkov:skip=CKV_GCP_62:access logging of a log bucket would need a second bucket; Cloud Audit Logs data access logs cover it where wanted
  #checkov:skip=CKV_GCP_78:versioning is off on purpose: every version would be a partial copy of a log (see the comment on versioning)
  count = var.task_logs == null ? 0 : 1

  project       = var.project_id
  name          = local.task_logs_bucket
  location      = var.region
  force_destroy = var.task_logs.force_destroy

  uniform_bucket_level_access = true # IAM only, no object ACLs
  public_access_prevention    = "enforced"

  # No versioning: Airflow appends to a log by rewriting the whole object, so every noncurrent
  # version would only be a partial copy of the final log, kept (and billed) until the lifecycle
  # rule reached it. An object a worker overwrites or deletes still stays restorable for the
  # bucket's soft-delete window (Cloud Storage's default for new buckets: 7 days).
  versioning {
    enabled = false
  }

  lifecycle_rule {
    condition {
      age            = var.task_logs.retention_days
      matches_prefix = ["${local.task_logs_prefix}/"]
    }
    action {
      type = "Delete"
    }
  }

  labels = {
    airtasks-cluster = var.cluster_name
    airtasks-role    = "task-logs"
  }

  lifecycle {
    precondition {
      condition     = length(local.task_logs_bucket) <= 63
      error_message = "task_logs: the bucket name \"${local.task_logs_bucket}\" has ${length(local.task_logs_bucket)} characters, Cloud Storage allows 63; use a shorter cluster_name, or set task_logs = null to keep logs on the nodes."
    }
  }
}

################################################################################
# Who may do what (bucket-level grants; the bucket holds nothing but logs)
################################################################################

# Every node: create a log and read it back.
resource "google_storage_bucket_iam_member" "logs_write" {
  for_each = local.task_logs_writers

  bucket = google_storage_bucket.logs[0].name
  role   = each.value.role
  member = "serviceAccount:${each.value.node == "manager" ? module.manager.service_account : module.workers[each.value.node].service_account}"
}

# Every node, also: replace a log that exists. Airflow's writer uploads the joined text under the
# same name whenever the object is there already (an attempt that resumes after a deferral, say),
# and Cloud Storage needs storage.objects.delete besides storage.objects.create to overwrite an
# object ("IAM permissions for Cloud Storage"); objectCreator has no delete, so that upload would
# fail and the rest of the log stay on the node. No predefined role adds delete alone
# (roles/storage.objectUser would add metadata updates, restores and managed folders too), hence
# this one-permission custom role, granted on this bucket only.
resource "google_project_iam_custom_role" "logs_overwrite" {
  count = var.task_logs == null ? 0 : 1

  project     = var.project_id
  role_id     = "airtasks_${replace(var.cluster_name, "-", "_")}_logs_overwrite"
  title       = "Air-Tasks ${var.cluster_name} task log overwrite"
  description = "Replace a task log in the log bucket of Air-Tasks cluster ${var.cluster_name}: Cloud Storage needs delete to overwrite an object."
  permissions = ["storage.objects.delete"]
}

resource "google_storage_bucket_iam_member" "logs_overwrite" {
  for_each = toset(local.task_logs_nodes)

  bucket = google_storage_bucket.logs[0].name
  role   = google_project_iam_custom_role.logs_overwrite[0].name
  member = "serviceAccount:${each.key == "manager" ? module.manager.service_account : module.workers[each.key].service_account}"
}
