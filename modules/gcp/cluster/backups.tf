################################################################################
# Backups: the stack's own PostgreSQL (Airflow's metadata database, on a
# manager's local volume) dumped on a schedule under backups/ in a bucket of its
# own, and restored from the newest dump when PostgreSQL comes up empty. The
# stack's `db-backup` service runs on a manager and signs with the managers'
# service account through the metadata server: no key, nothing in state.
#
# Not in the log bucket (task_logs.tf), unlike on AWS: Cloud Storage grants a
# role on a whole bucket (narrower grants need IAM Conditions), and every node
# may read (and replace) everything in the log bucket. A dump holds every
# connection and variable Airflow keeps, secrets included, so its bucket is one
# only the managers can reach. No delete for anyone: the lifecycle rule is what
# removes old dumps. With a managed database (Cloud SQL, database.tf) there is
# nothing to dump: Cloud SQL keeps its own backups, with point-in-time recovery.
################################################################################

locals {
  backups_on = var.backups != null && !local.database_on
  # Bucket names are global; the project id keeps this one apart (as the log bucket's).
  backups_bucket = "${var.project_id}-airtasks-${var.cluster_name}-backups"
  backups_prefix = "backups"
  backups_url    = local.backups_on ? "gs://${local.backups_bucket}/${local.backups_prefix}" : null

  # What the manager renders the stack with (airtasks stack render --backups). No region: that is
  # S3's; a gs:// URL is all google-cloud-storage needs.
  backups_setting = local.backups_on ? jsonencode({
    url           = local.backups_url
    every_minutes = var.backups.every_minutes
  }) : null

  # objectCreator: upload a dump (create only; replacing an object would need delete, which no
  # one gets). objectViewer: list the dumps and read the newest back to restore it.
  backups_roles = local.backups_on ? ["roles/storage.objectCreator", "roles/storage.objectViewer"] : []
}

resource "google_storage_bucket" "backups" {
  #checkov:skip=CKV_GCP_62:access logging would need a second bucket; Cloud Audit Logs data access logs cover it where wanted
  #checkov:skip=CKV_GCP_78:versioning is off on purpose: nothing may overwrite or delete a dump but the lifecycle rule (see the comment on versioning)
  count = local.backups_on ? 1 : 0

  project       = var.project_id
  name          = local.backups_bucket
  location      = var.region
  force_destroy = var.backups.force_destroy

  uniform_bucket_level_access = true # IAM only, no object ACLs
  public_access_prevention    = "enforced"

  # No versioning: every dump is a new object under a new name (airflow-<UTC time>.dump), and the
  # managers can neither overwrite nor delete one (Cloud Storage needs delete to replace an
  # object), so no noncurrent version would ever come from a node. The lifecycle rule's deletions
  # would be the only source of them, and keeping those would defeat retention_days. A dump
  # someone deletes by hand stays restorable for the bucket's soft-delete window (Cloud Storage's
  # default for new buckets: 7 days).
  versioning {
    enabled = false
  }

  lifecycle_rule {
    condition {
      age            = var.backups.retention_days
      matches_prefix = ["${local.backups_prefix}/"]
    }
    action {
      type = "Delete"
    }
  }

  labels = {
    airtasks-cluster = var.cluster_name
    airtasks-role    = "backups"
  }

  lifecycle {
    precondition {
      condition     = length(local.backups_bucket) <= 63
      error_message = "backups: the bucket name \"${local.backups_bucket}\" has ${length(local.backups_bucket)} characters, Cloud Storage allows 63; use a shorter cluster_name, or set backups = null to take no backups."
    }
  }
}

# The managers only (the db-backup service runs on one): write, list and read. Nothing for the
# workers, and no delete for anyone.
resource "google_storage_bucket_iam_member" "backups" {
  for_each = toset(local.backups_roles)

  bucket = google_storage_bucket.backups[0].name
  role   = each.key
  member = "serviceAccount:${module.manager.service_account}"
}
