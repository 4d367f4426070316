################################################################################
# Backups: the stack's own PostgreSQL (Airflow's metadata database, on a
# manager's local volume) dumped on a schedule under backups/ in the cluster's
# bucket (bucket.tf), and restored from the newest dump when PostgreSQL comes up
# empty. The stack's `db-backup` service runs on a manager with the node's role.
#
# A dump holds the connections and variables Airflow keeps, secrets included: so
# only the managers may write and read it, never the workers. No delete: the
# bucket's lifecycle rule expires old dumps. With a managed database (RDS,
# database.tf) there is nothing to dump: RDS keeps its own backups.
################################################################################

locals {
  backups_on     = var.backups != null && !local.database_on
  backups_prefix = "backups"
  backups_url    = local.backups_on ? "s3://${local.bucket_name}/${local.backups_prefix}" : null

  # What the manager renders the stack with (airtasks stack render --backups).
  backups_setting = local.backups_on ? jsonencode({
    url           = local.backups_url
    region        = var.region
    every_minutes = var.backups.every_minutes
  }) : null
}

data "aws_iam_policy_document" "backups" {
  count = local.backups_on ? 1 : 0

  statement {
    sid       = "WriteReadBackups"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = ["${local.bucket_arn}/${local.backups_prefix}/*"]
  }
  # The restore looks for the newest dump: key names under backups/ only.
  statement {
    sid       = "ListBackups"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.backups_prefix}/*"]
    }
  }
}

resource "aws_iam_role_policy" "backups" {
  count = local.backups_on ? 1 : 0

  name   = "airtasks-backups"
  role   = module.manager.role_name
  policy = data.aws_iam_policy_document.backups[0].json
}
