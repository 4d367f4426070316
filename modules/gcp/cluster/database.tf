################################################################################
# Managed PostgreSQL (var.database, docs/high-availability.md): Airflow's
# metadata database as a Cloud SQL for PostgreSQL instance instead of the
# stack's `postgres` service on a manager.
#
# Reachable only from the cluster's VPC: a private IP through private services
# access (a range of the VPC peered with Google's service network), no public
# IP, TLS required. Cloud SQL cannot generate and keep the password the way
# RDS does (manage_master_user_password), so Terraform makes one and writes it
# twice, write-only: to the `airflow` user (password_wo) and to a Secret
# Manager secret (secret_data_wo), from an ephemeral random_password. Neither
# the plan nor the state ever holds it. The manager's stack gets only the
# private IP and the secret's name; each Airflow service reads the secret with
# its VM's service account when its container starts (airtasks.stack.database).
#
# Who connects: every Airflow service, and the Celery workers too: a worker
# stores each task's result and state in Celery's result backend, which is this
# database (`db+postgresql://`, glue/airtasks/stack/templates/stack.yml). So the
# managers' and every worker group's service accounts may read the secret, and
# nothing else may.
################################################################################

locals {
  database_on = try(var.database.managed, false) == true
  # Same as the stack's own database and RDS: the services connect as `airflow` to `airflow`.
  database_user = "airflow"
  database_db   = "airflow"
  # Cloud SQL's names: POSTGRES_16. Shared-core and db-custom tiers exist only in the ENTERPRISE
  # edition, which PostgreSQL 16+ no longer defaults to; db-perf-optimized tiers only in ENTERPRISE_PLUS.
  database_version = local.database_on ? "POSTGRES_${var.database.engine_version}" : null
  database_edition = local.database_on ? (startswith(var.database.tier, "db-perf-optimized-") ? "ENTERPRISE_PLUS" : "ENTERPRISE") : null

  # What the manager renders the stack with (airtasks stack render --database): no password. The
  # secret by its full name with the project's id, what airtasks.stack.database takes (the
  # resource's `name` has the project's number). The secret's version and grants are made while the
  # manager boots, minutes before its stack starts; a service that comes up earlier restarts.
  database_secret = local.database_on ? "projects/${var.project_id}/secrets/${google_secret_manager_secret.database[0].secret_id}" : null
  database_setting = local.database_on ? jsonencode({
    host        = google_sql_database_instance.this[0].private_ip_address
    port        = 5432
    name        = google_sql_database.this[0].name
    user        = google_sql_user.this[0].name
    secret_name = local.database_secret
  }) : null

  # Every node's service account: the managers' and each worker group's (see above).
  database_readers = local.database_on ? merge(
    { manager = module.manager.service_account },
    { for q, w in module.workers : "worker-${q}" => w.service_account },
  ) : {}
}

################################################################################
# Private services access: the instance's private IP comes from a range of the
# cluster's own VPC, peered with Google's service producer network.
################################################################################

resource "google_compute_global_address" "database" {
  count = local.database_on ? 1 : 0

  project       = var.project_id
  name          = "airtasks-${var.cluster_name}-database"
  description   = "Air-Tasks ${var.cluster_name}: Cloud SQL's private IPs (private services access)"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = module.network.network
}

resource "google_service_networking_connection" "database" {
  count = local.database_on ? 1 : 0

  network                 = module.network.network
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.database[0].name]
  # The peering outlives the instance by a few days (Google keeps its side while it deletes the
  # instance), so removing it on destroy fails; the VPC's own deletion takes it along.
  deletion_policy = "ABANDON"
}

################################################################################
# The instance
################################################################################

# Cloud SQL keeps a deleted instance's name for about a week: a suffix lets a cluster be destroyed
# and created again under the same cluster_name. Not a secret.
resource "random_id" "database" {
  count = local.database_on ? 1 : 0

  byte_length = 2
}

resource "google_sql_database_instance" "this" {
  #checkov:skip=CKV_GCP_51:log_checkpoints is Cloud SQL's default (on); not set, to keep the flags to what the stack needs
  #checkov:skip=CKV_GCP_52:connection logging costs per GB in Cloud Logging; set it with database flags where wanted
  #checkov:skip=CKV_GCP_53:disconnection logs cost per GB in Cloud Logging, as CKV_GCP_52
  #checkov:skip=CKV_GCP_54:lock-wait logs cost per GB in Cloud Logging, as CKV_GCP_52
  #checkov:skip=CKV_GCP_55:log_min_messages stays at Cloud SQL's default (warning)
  #checkov:skip=CKV_GCP_56:temp-file logs cost per GB in Cloud Logging, as CKV_GCP_52
  #checkov:skip=CKV_GCP_57:log_min_duration_statement stays off: statement logs would show the queries' values
  #checkov:skip=CKV_GCP_108:hostname logging adds a DNS lookup to every connection; off by default
  #checkov:skip=CKV_GCP_109:log_min_error_statement stays at Cloud SQL's default
  #checkov:skip=CKV_GCP_110:pgAudit costs per GB in Cloud Logging and logs the statements' values; not a default
  #checkov:skip=CKV_GCP_111:log_statement stays at Cloud SQL's default (none): statement logs would show values
  #checkov:skip=CKV_GCP_79:the PostgreSQL major version is the user's choice (database.engine_version)
  #checkov:skip=CKV_GCP_6:ssl_mode is ENCRYPTED_ONLY, so every connection is TLS; client certificates (TRUSTED_CLIENT_CERTIFICATE_REQUIRED) would need one per node, and the password from Secret Manager authenticates
  count = local.database_on ? 1 : 0

  project          = var.project_id
  name             = "airtasks-${var.cluster_name}-${random_id.database[0].hex}"
  region           = var.region
  database_version = local.database_version
  # Terraform refuses to destroy it while true, and so does the API (settings below): a destroy
  # needs database.deletion_protection = false applied first.
  deletion_protection = var.database.deletion_protection
  # Cloud SQL's name for the backup it takes on delete (final_backup_config below).
  final_backup_description = "Air-Tasks ${var.cluster_name}: taken when the instance was deleted"

  settings {
    tier              = var.database.tier
    edition           = local.database_edition
    availability_type = var.database.multi_az ? "REGIONAL" : "ZONAL"
    disk_type         = "PD_SSD"
    disk_size         = var.database.disk_size
    disk_autoresize   = true # disk_size is where it starts; Cloud SQL grows it (see lifecycle)

    deletion_protection_enabled = var.database.deletion_protection
    # The backup Cloud SQL takes when the instance is deleted, kept as long as it allows (365 days),
    # as RDS keeps its final snapshot; the automated backups go with the instance.
    final_backup_config {
      enabled        = true
      retention_days = 365
    }

    ip_configuration {
      ipv4_enabled    = false # no public IP
      private_network = module.network.network
      # Only encrypted connections (the services connect with sslmode=require).
      ssl_mode = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      # ENTERPRISE keeps 1 to 7 days of transaction logs; no point in more than the backups.
      transaction_log_retention_days = min(var.database.backup_retention_days, 7)
      backup_retention_settings {
        retained_backups = var.database.backup_retention_days # one automated backup a day
        retention_unit   = "COUNT"
      }
    }

    # As the stack's own postgres and RDS (database.tf of modules/aws/cluster): a lost scheduler's
    # session must end soon, or the rows it locked stay locked and the next scheduler skips that
    # DAG run. 20 s idle, then 4 probes 5 s apart. (tcp_user_timeout is not set: it is not among
    # the flags Cloud SQL is known to accept; the clients set it, airtasks.stack.database_keepalive.)
    database_flags {
      name  = "tcp_keepalives_idle"
      value = "20"
    }
    database_flags {
      name  = "tcp_keepalives_interval"
      value = "5"
    }
    database_flags {
      name  = "tcp_keepalives_count"
      value = "4"
    }

    user_labels = {
      airtasks-cluster = var.cluster_name
      airtasks-role    = "database"
    }
  }

  # The private IP needs the peering first; the instance does not reference it.
  depends_on = [google_service_networking_connection.database]

  lifecycle {
    # Grown by Cloud SQL (disk_autoresize): a larger size than configured is not a change to undo.
    ignore_changes = [settings[0].disk_size]
  }
}

resource "google_sql_database" "this" {
  count = local.database_on ? 1 : 0

  project  = var.project_id
  instance = google_sql_database_instance.this[0].name
  name     = local.database_db
}

################################################################################
# The password: generated in memory, written write-only to the user and to the
# secret in the same apply. It changes only when database.password_version is
# raised (both versions follow it).
################################################################################

ephemeral "random_password" "database" {
  count = local.database_on ? 1 : 0

  length = 40
  # Letters and digits only: 238 bits, and nothing a connection URL has to quote.
  special = false
}

resource "google_sql_user" "this" {
  count = local.database_on ? 1 : 0

  project             = var.project_id
  instance            = google_sql_database_instance.this[0].name
  name                = local.database_user
  password_wo         = ephemeral.random_password.database[0].result
  password_wo_version = var.database.password_version
}

resource "google_secret_manager_secret" "database" {
  count = local.database_on ? 1 : 0

  project   = var.project_id
  secret_id = "airtasks-${var.cluster_name}-database"
  labels = {
    airtasks-cluster = var.cluster_name
    airtasks-role    = "database"
  }

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "database" {
  count = local.database_on ? 1 : 0

  secret = google_secret_manager_secret.database[0].id
  # The same JSON as RDS's secret, so one parser reads both (airtasks.stack.database).
  secret_data_wo = jsonencode({
    username = local.database_user
    password = ephemeral.random_password.database[0].result
  })
  secret_data_wo_version = var.database.password_version

  lifecycle {
    # A user created again gets this run's password: so must the secret (a new password_version
    # replaces the version by itself). The user's id, not the whole user: an in-place update that
    # sets no password must not give the secret one the user does not have.
    replace_triggered_by = [google_sql_user.this[count.index].id]
    # The new version is the latest before the old one goes: a service starting in between still
    # finds one to read.
    create_before_destroy = true
  }
}

# Exactly this secret, to each node's service account; not project-wide.
resource "google_secret_manager_secret_iam_member" "database" {
  for_each = local.database_readers

  project   = var.project_id
  secret_id = google_secret_manager_secret.database[0].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${each.value}"
}
