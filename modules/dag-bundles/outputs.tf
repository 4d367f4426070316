output "bucket_prefixes" {
  description = "Bucket bundles: name => folder of the bucket (what the nodes may read)."
  value       = local.bucket_prefixes
}

output "stack_setting" {
  description = "The bundles as JSON for the manager's `stack.dag_bundles` (`airtasks stack render --dag-bundles`), the bucket resolved; null without bundles."
  value       = length(var.dag_bundles) == 0 ? null : format("[%s]", join(",", local.texts))
}

output "upload" {
  description = "Per bucket bundle, the command that copies a local `dags/` folder to its folder of the bucket, with your own credentials."
  value       = local.upload
}

output "git_credentials" {
  description = "Git bundles that name a credential: name => the SSM parameter's name (AWS) or the Secret Manager secret's id (GCP). Names only: the cluster module grants the managers read access to exactly these."
  value       = { for b in var.dag_bundles : b.name => b.git.credential if try(b.git.credential, null) != null }
}
