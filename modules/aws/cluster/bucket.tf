################################################################################
# The cluster's bucket: one per cluster, each user under its own prefix with its
# own grants: task logs under logs/ (task_logs.tf), your DAG bundles under their
# prefixes (dag_bundles.tf), database backups under backups/ (backups.tf). It
# exists when any of them is on. The name still says "log": it predates the
# other prefixes, and renaming an S3 bucket means replacing it, logs and all.
################################################################################

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  # Known at plan time (the manager's user data carries the URL) and unique: S3 names are global,
  # so the account and region are part of it. 63 characters at most with a 22-character cluster name.
  bucket_name = "airtasks-${var.cluster_name}-log-${data.aws_caller_identity.current.account_id}-${var.region}"
  # From the name, not the resource: the policies are then whole in a plan.
  bucket_arn = "arn:${data.aws_partition.current.partition}:s3:::${local.bucket_name}"
  bucket_on  = var.task_logs != null || length(local.dag_bucket_bundles) > 0 || local.backups_on
  # The bucket's own settings live in `task_logs` (they came first); without task logs, the safe ones.
  bucket_force_destroy = try(var.task_logs.force_destroy, false)
  bucket_deny_insecure = try(var.task_logs.deny_insecure_transport, true)
}

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:access logging of a log bucket would need a second bucket; CloudTrail data events cover it where wanted
  #checkov:skip=CKV_AWS_144:cross-region replication doubles the cost of logs that expire; not a default
  #checkov:skip=CKV_AWS_145:SSE-S3: only this cluster's roles may read, a CMK would add a key policy but no narrower reader
  #checkov:skip=CKV2_AWS_62:no consumer of event notifications
  count = local.bucket_on ? 1 : 0

  bucket        = local.bucket_name
  force_destroy = local.bucket_force_destroy
  tags          = merge(var.tags, { "airtasks:cluster" = var.cluster_name })
}

resource "aws_s3_bucket_public_access_block" "logs" {
  count = local.bucket_on ? 1 : 0

  bucket                  = aws_s3_bucket.logs[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  count = local.bucket_on ? 1 : 0

  bucket = aws_s3_bucket.logs[0].id
  rule {
    object_ownership = "BucketOwnerEnforced" # no ACLs: the policy and the roles decide
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  count = local.bucket_on ? 1 : 0

  bucket = aws_s3_bucket.logs[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

# Versioned: a worker may rewrite a log (Airflow appends by rewriting the object), so an earlier
# copy stays until the lifecycle rule removes it; workers cannot delete any version. An uploaded DAG
# file that is overwritten by mistake can be restored the same way.
resource "aws_s3_bucket_versioning" "logs" {
  count = local.bucket_on ? 1 : 0

  bucket = aws_s3_bucket.logs[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  count = local.bucket_on ? 1 : 0

  bucket = aws_s3_bucket.logs[0].id
  # Only logs expire, and only with task logs on (a disabled rule otherwise): DAGs stay until you
  # remove them.
  rule {
    id     = "expire-task-logs"
    status = var.task_logs == null ? "Disabled" : "Enabled"
    filter {
      prefix = "${local.task_logs_prefix}/"
    }
    expiration {
      days = try(var.task_logs.retention_days, 30)
    }
    noncurrent_version_expiration {
      noncurrent_days = try(var.task_logs.retention_days, 30)
    }
  }
  # Dumps expire the same way: the lifecycle is what removes them (no node may delete one). Kept on
  # with a managed database too, so the dumps taken before a switch to it still go.
  rule {
    id     = "expire-backups"
    status = var.backups != null ? "Enabled" : "Disabled"
    filter {
      prefix = "${local.backups_prefix}/"
    }
    expiration {
      days = try(var.backups.retention_days, 14)
    }
    noncurrent_version_expiration {
      noncurrent_days = try(var.backups.retention_days, 14)
    }
  }
  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  depends_on = [aws_s3_bucket_versioning.logs]
}

data "aws_iam_policy_document" "logs_bucket" {
  count = local.bucket_on && local.bucket_deny_insecure ? 1 : 0

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      local.bucket_arn,
      "${local.bucket_arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  count = local.bucket_on && local.bucket_deny_insecure ? 1 : 0

  bucket     = aws_s3_bucket.logs[0].id
  policy     = data.aws_iam_policy_document.logs_bucket[0].json
  depends_on = [aws_s3_bucket_public_access_block.logs]
}
