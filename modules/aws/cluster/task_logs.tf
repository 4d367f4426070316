################################################################################
# Task logs: Airflow writes each task's log to a bucket of the cluster's own
#
# Airflow's S3 log writer first asks for the object (HeadObject) and S3 answers a
# missing key with 403 rather than 404 unless the caller may list the bucket. So
# workers get s3:ListBucket, and a bucket that holds only logs keeps that grant
# from showing anything else (DAGs, backups) to a worker.
################################################################################

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  # Known at plan time (the manager's user data carries the URL) and unique: S3 names are global,
  # so the account and region are part of it. 63 characters at most with a 22-character cluster name.
  task_logs_bucket = "airtasks-${var.cluster_name}-log-${data.aws_caller_identity.current.account_id}-${var.region}"
  task_logs_prefix = "logs"
  # From the name, not the resource: the policies are then whole in a plan.
  task_logs_arn = "arn:${data.aws_partition.current.partition}:s3:::${local.task_logs_bucket}"
  task_logs_url = var.task_logs == null ? null : "s3://${local.task_logs_bucket}/${local.task_logs_prefix}"
  # The roles that write and read logs: every worker group's and the managers' ("manager" is a
  # reserved queue name, so it cannot clash with a queue).
  task_logs_roles = var.task_logs == null ? {} : merge(
    { for q, w in module.workers : q => w.role_name },
    { manager = module.manager.role_name },
  )
}

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:access logging of a log bucket would need a second bucket; CloudTrail data events cover it where wanted
  #checkov:skip=CKV_AWS_144:cross-region replication doubles the cost of logs that expire; not a default
  #checkov:skip=CKV_AWS_145:SSE-S3: only this cluster's roles may read, a CMK would add a key policy but no narrower reader
  #checkov:skip=CKV2_AWS_62:no consumer of event notifications
  count = var.task_logs == null ? 0 : 1

  bucket        = local.task_logs_bucket
  force_destroy = var.task_logs.force_destroy
  tags          = merge(var.tags, { "airtasks:cluster" = var.cluster_name })
}

resource "aws_s3_bucket_public_access_block" "logs" {
  count = var.task_logs == null ? 0 : 1

  bucket                  = aws_s3_bucket.logs[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  count = var.task_logs == null ? 0 : 1

  bucket = aws_s3_bucket.logs[0].id
  rule {
    object_ownership = "BucketOwnerEnforced" # no ACLs: the policy and the roles decide
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  count = var.task_logs == null ? 0 : 1

  bucket = aws_s3_bucket.logs[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

# Versioned: a worker may rewrite a log (Airflow appends by rewriting the object), so an earlier
# copy stays until the lifecycle rule removes it; workers cannot delete any version.
resource "aws_s3_bucket_versioning" "logs" {
  count = var.task_logs == null ? 0 : 1

  bucket = aws_s3_bucket.logs[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  count = var.task_logs == null ? 0 : 1

  bucket = aws_s3_bucket.logs[0].id
  rule {
    id     = "expire-task-logs"
    status = "Enabled"
    filter {
      prefix = "${local.task_logs_prefix}/"
    }
    expiration {
      days = var.task_logs.retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = var.task_logs.retention_days
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
  count = var.task_logs == null ? 0 : (var.task_logs.deny_insecure_transport ? 1 : 0)

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      local.task_logs_arn,
      "${local.task_logs_arn}/*",
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
  count = var.task_logs == null ? 0 : (var.task_logs.deny_insecure_transport ? 1 : 0)

  bucket     = aws_s3_bucket.logs[0].id
  policy     = data.aws_iam_policy_document.logs_bucket[0].json
  depends_on = [aws_s3_bucket_public_access_block.logs]
}

# Every node writes a log and reads it back to append; no delete, nothing outside the prefix. The
# managers too: besides the API server, which reads and lists logs to show them, they run the
# `manager` queue's worker (the scaler DAG) and the triggerer, whose logs are task logs as well.
data "aws_iam_policy_document" "logs" {
  count = var.task_logs == null ? 0 : 1

  statement {
    sid       = "WriteTaskLogs"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = ["${local.task_logs_arn}/${local.task_logs_prefix}/*"]
  }
  statement {
    sid       = "FindTaskLogs" # see the note at the top: HeadObject needs it to tell "absent"
    actions   = ["s3:ListBucket"]
    resources = [local.task_logs_arn]
  }
}

resource "aws_iam_role_policy" "logs" {
  for_each = local.task_logs_roles

  name   = "airtasks-task-logs"
  role   = each.value
  policy = data.aws_iam_policy_document.logs[0].json
}
