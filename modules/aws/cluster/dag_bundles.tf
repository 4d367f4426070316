################################################################################
# Your DAG bundles (var.dag_bundles, docs/dag-bundles.md), checked and rendered
# by modules/dag-bundles: the manager's boot script renders them into the stack
# as Airflow's [dag_processor] dag_bundle_config_list. A bucket bundle reads its
# prefix of the cluster's bucket (bucket.tf): every node may read it, none may
# write under it; you upload with your own credentials.
################################################################################

module "dag_bundles" {
  source = "../../dag-bundles"

  cloud       = "aws"
  dag_bundles = var.dag_bundles
  bucket      = local.bucket_name
  region      = var.region
}

locals {
  dag_bucket_bundles = module.dag_bundles.bucket_prefixes
  dag_prefix_arns    = [for prefix in values(local.dag_bucket_bundles) : "${local.bucket_arn}/${prefix}*"]
}

# Read, list, and an explicit deny of every write under the DAG prefixes, so a later grant on the
# bucket (logs, backups) can never let a node change the code that every node runs. ListBucket is
# on the whole bucket: the S3 bundle checks the bucket (HeadBucket) and lists the prefix's parent
# to find it, and neither request carries the prefix a condition could test; it shows key names,
# never contents.
data "aws_iam_policy_document" "dags" {
  count = length(local.dag_bucket_bundles) > 0 ? 1 : 0

  statement {
    sid       = "ReadDags"
    actions   = ["s3:GetObject"]
    resources = local.dag_prefix_arns
  }
  statement {
    sid       = "ListDags"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]
  }
  statement {
    sid    = "NoDagWrites"
    effect = "Deny"
    actions = [
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:DeleteObjectVersion",
      "s3:PutObjectTagging",
      "s3:RestoreObject",
    ]
    resources = local.dag_prefix_arns
  }
}

# Every node: the dag-processor and the API server on the managers parse the bundles, and each
# worker loads the bundle of the task it runs.
resource "aws_iam_role_policy" "dags" {
  for_each = length(local.dag_bucket_bundles) > 0 ? local.node_roles : {}

  name   = "airtasks-dag-bundles"
  role   = each.value
  policy = data.aws_iam_policy_document.dags[0].json
}

################################################################################
# Private repositories: the managers read the named SSM parameters at boot
# (`airtasks secrets create --git-credential`) and hand each value to the stack
# as a Swarm secret. Only the managers, only GetParameter, only those parameters;
# nothing without a credential. A SecureString is decrypted by KMS on SSM's
# behalf: kms:Decrypt only through SSM and only for these parameters (SSM puts
# the parameter's ARN in the encryption context), whichever key encrypts them.
################################################################################

locals {
  git_credential_arns = [
    for name in values(module.dag_bundles.git_credentials) :
    "arn:${data.aws_partition.current.partition}:ssm:${var.region}:${data.aws_caller_identity.current.account_id}:parameter${name}"
  ]
}

data "aws_iam_policy_document" "git_credentials" {
  count = length(local.git_credential_arns) > 0 ? 1 : 0

  statement {
    sid       = "ReadGitCredentials"
    actions   = ["ssm:GetParameter"]
    resources = local.git_credential_arns
  }
  statement {
    sid       = "DecryptGitCredentialsViaSsm"
    actions   = ["kms:Decrypt"]
    resources = ["arn:${data.aws_partition.current.partition}:kms:${var.region}:${data.aws_caller_identity.current.account_id}:key/*"]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ssm.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:PARAMETER_ARN"
      values   = local.git_credential_arns
    }
  }
}

resource "aws_iam_role_policy" "git_credentials" {
  count = length(local.git_credential_arns) > 0 ? 1 : 0

  name   = "airtasks-git-credentials"
  role   = module.manager.role_name
  policy = data.aws_iam_policy_document.git_credentials[0].json
}
