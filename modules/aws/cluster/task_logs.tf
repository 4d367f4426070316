################################################################################
# Task logs: Airflow writes each task's log under logs/ in the cluster's bucket
# (bucket.tf)
#
# Airflow's S3 log writer first asks for the object (HeadObject) and S3 answers a
# missing key with 403 rather than 404 unless the caller may list the bucket. So
# workers get s3:ListBucket: key names, never contents, of the whole bucket.
################################################################################

locals {
  task_logs_bucket = local.bucket_name
  task_logs_prefix = "logs"
  task_logs_arn    = local.bucket_arn
  task_logs_url    = var.task_logs == null ? null : "s3://${local.task_logs_bucket}/${local.task_logs_prefix}"
  # The roles that write and read logs: every worker group's and the managers' ("manager" is a
  # reserved queue name, so it cannot clash with a queue).
  task_logs_roles = var.task_logs == null ? {} : local.node_roles
  node_roles = merge(
    { for q, w in module.workers : q => w.role_name },
    { manager = module.manager.role_name },
  )
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
