################################################################################
# Your DAG bundles, once for both clouds: the input's validations, and what the
# cluster modules do with it (the manager's stack setting, the bucket folders the
# nodes may read, the upload commands). The bucket itself and its grants are the
# cluster module's (modules/aws/cluster/dag_bundles.tf, modules/gcp/cluster).
################################################################################

locals {
  scheme = var.cloud == "aws" ? "s3" : "gs"
  # Bucket bundles: name => folder of the bucket.
  bucket_prefixes = { for b in var.dag_bundles : b.name => b.bucket.prefix if b.bucket != null }

  # One JSON text per bundle: a git and a bucket object have different types.
  texts = [
    for b in var.dag_bundles : (b.git != null
      ? jsonencode({ name = b.name, git = b.git })
      : jsonencode({ name = b.name, bucket = { url = "${local.scheme}://${var.bucket}/${b.bucket.prefix}", region = var.region, refresh_seconds = b.bucket.refresh_seconds } })
    )
  ]

  upload = {
    for name, prefix in local.bucket_prefixes : name => (var.cloud == "aws"
      ? "aws s3 sync dags/ s3://${var.bucket}/${prefix}"
      : "gcloud storage rsync dags/ gs://${var.bucket}/${prefix} --recursive"
    )
  }
}

check "bucket_for_bucket_bundles" {
  assert {
    condition     = length(local.bucket_prefixes) == 0 || var.bucket != null
    error_message = "dag_bundles: a bucket bundle needs the cluster's bucket; the cluster module passes none."
  }
}
