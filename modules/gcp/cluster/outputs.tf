output "backups" {
  description = "Where the metadata database's backups go: `bucket` (the backups' own), `prefix` (`backups/`), `url` (what the manager's `db-backup` service writes to, `gs://<bucket>/backups`), `every_minutes` and `retention_days`; `null` when `backups = null` or with `database.managed` (Cloud SQL keeps its own)."
  value = local.backups_on ? {
    bucket         = local.backups_bucket
    prefix         = "${local.backups_prefix}/"
    url            = local.backups_url
    every_minutes  = var.backups.every_minutes
    retention_days = var.backups.retention_days
  } : null
}

output "database" {
  description = "The managed PostgreSQL (`database.managed`): `instance` (the Cloud SQL instance's name), `connection_name`, `address` (its private IP), `port`, `name`, `user` and `secret_name`, the Secret Manager secret holding the password as JSON {username, password} (never the password; read it with your own credentials, e.g. for pg_restore from a VM of the VPC); null with the stack's own PostgreSQL."
  value = local.database_on ? {
    instance        = google_sql_database_instance.this[0].name
    connection_name = google_sql_database_instance.this[0].connection_name
    address         = google_sql_database_instance.this[0].private_ip_address
    port            = 5432
    name            = google_sql_database.this[0].name
    user            = google_sql_user.this[0].name
    secret_name     = local.database_secret
  } : null
}

output "manager_address" {
  description = "Internal address of the first manager (its Swarm advertise address)."
  value       = module.manager.internal_ip
}

output "manager_name" {
  description = "Name of the first manager VM, for `gcloud compute ssh`."
  value       = module.manager.name
}

output "manager_public_ip" {
  description = "Static external IP of the manager (point your DNS name at it); `null` without one."
  value       = module.manager.external_ip
}

output "manager_zone" {
  description = "Zone of the first manager VM."
  value       = module.manager.zone
}

output "scaler_config" {
  description = "What the scaler reads (`airtasks scale --config`): backend `gcp`, project, region, and per queue its MIG, min, max, slots_per_node, prescale, pack and learn_durations."
  value       = local.scaler_config
}

output "secret_ids" {
  description = "Secret Manager secret ids holding the Swarm worker token, manager token and manager address (values are written by the manager at boot)."
  value       = module.manager.secret_ids
}

output "task_logs" {
  description = "Where task logs are kept: `bucket`, `prefix` (`logs/`), `url` (Airflow's remote base log folder, `gs://<bucket>/logs`) and `retention_days`; `null` when `task_logs = null`."
  value = var.task_logs == null ? null : {
    bucket         = local.task_logs_bucket
    prefix         = "${local.task_logs_prefix}/"
    url            = local.task_logs_url
    retention_days = var.task_logs.retention_days
  }
}

output "web_url" {
  description = "URL of the Airflow UI behind the manager's HTTPS proxy."
  value       = module.manager.web_url
}

output "worker_groups" {
  description = "Regional MIG name per queue."
  value       = { for q, w in module.workers : q => w.name }
}

output "zones" {
  description = "Zones the worker MIGs spread over (manager 0 is in the first): `zones` when set, else the region's zones pinned at the first apply."
  value       = local.zones
}

output "dag_bundles" {
  description = "Your DAG bundles: `bucket` (the cluster's DAG bucket, or null without a bucket bundle) and `upload`: per bucket bundle, the command that copies a local `dags/` folder to its prefix, with your own credentials (the nodes may only read it)."
  value = {
    bucket = local.dag_bucket_on ? local.dag_bucket : null
    upload = module.dag_bundles.upload
  }
}
