################################################################################
# Managed PostgreSQL (var.database, docs/high-availability.md): Airflow's
# metadata database as an RDS instance in the private subnets instead of the
# stack's `postgres` service on a manager. RDS keeps the master password in
# Secrets Manager (manage_master_user_password): Terraform never sees it, so
# neither the state nor the plan holds it. The manager's stack gets only the
# endpoint and the secret's ARN; each Airflow service reads the secret with its
# node's role when its container starts (airtasks.stack.database).
#
# Who connects: every Airflow service, and the Celery workers too: a worker
# stores each task's result and state in Celery's result backend, which is this
# database (`db+postgresql://`, glue/airtasks/stack/templates/stack.yml). So the
# managers and the worker groups may reach 5432 (they share the node security
# group) and read the secret; nothing else.
################################################################################

locals {
  database_on = try(var.database.managed, false) == true
  # Same as the stack's own database: the service connects as `airflow` to `airflow`.
  database_name  = "airtasks-${var.cluster_name}"
  database_user  = "airflow"
  database_db    = "airflow"
  database_major = local.database_on ? split(".", var.database.engine_version)[0] : ""

  # What the manager renders the stack with (airtasks stack render --database): no password.
  database_setting = local.database_on ? jsonencode({
    host       = aws_db_instance.this[0].address
    port       = aws_db_instance.this[0].port
    name       = local.database_db
    user       = local.database_user
    secret_arn = aws_db_instance.this[0].master_user_secret[0].secret_arn
  }) : null
}

resource "aws_db_subnet_group" "this" {
  count = local.database_on ? 1 : 0

  name        = local.database_name
  description = "Air-Tasks ${var.cluster_name} PostgreSQL: the cluster's private subnets"
  subnet_ids  = module.network.private_subnet_ids
  tags        = merge(var.tags, { "airtasks:cluster" = var.cluster_name })
}

# 5432 from the cluster's nodes only (managers and workers share the node group: both connect, see
# above); no egress: the database opens no connection.
resource "aws_security_group" "database" {
  count = local.database_on ? 1 : 0

  name        = "${local.database_name}-database"
  description = "Air-Tasks ${var.cluster_name} PostgreSQL: 5432 from the cluster nodes only"
  vpc_id      = module.network.vpc_id
  tags        = merge(var.tags, { "airtasks:cluster" = var.cluster_name, Name = "${local.database_name}-database" })

  ingress {
    description     = "PostgreSQL from the cluster nodes (Airflow on the managers, Celery workers)"
    protocol        = "tcp"
    from_port       = 5432
    to_port         = 5432
    security_groups = [module.network.node_security_group_id]
  }

  egress = []
}

# The stack's own postgres runs with these (templates/stack.yml; docs/high-availability.md): a
# lost scheduler's session must end within about 40 s, or the rows it locked stay locked and the
# next scheduler skips that DAG run for good.
resource "aws_db_parameter_group" "this" {
  count = local.database_on ? 1 : 0

  name        = "${local.database_name}-postgres${local.database_major}"
  family      = "postgres${local.database_major}"
  description = "Air-Tasks ${var.cluster_name} PostgreSQL: TCP keepalives end a lost client's session within 40 s"
  tags        = merge(var.tags, { "airtasks:cluster" = var.cluster_name })

  parameter {
    name  = "tcp_keepalives_idle"
    value = "20"
  }
  parameter {
    name  = "tcp_keepalives_interval"
    value = "5"
  }
  parameter {
    name  = "tcp_keepalives_count"
    value = "4"
  }
  parameter {
    name  = "tcp_user_timeout"
    value = "40000"
  }
  # TLS only (the services connect with sslmode=require); RDS's default from PostgreSQL 15 on.
  parameter {
    name         = "rds.force_ssl"
    value        = "1"
    apply_method = "pending-reboot"
  }

  # A new major version needs a new family: create the new group before the instance moves over.
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "this" {
  #checkov:skip=CKV_AWS_118:enhanced monitoring needs a monitoring role and costs per instance; CloudWatch's basic metrics stay on
  #checkov:skip=CKV_AWS_129:log exports to CloudWatch cost per GB; turn them on with enabled_cloudwatch_logs_exports where wanted
  #checkov:skip=CKV_AWS_161:IAM database authentication would need a token per connection; Airflow connects with the password from Secrets Manager
  #checkov:skip=CKV_AWS_353:Performance Insights is not available on every instance class; not a default
  #checkov:skip=CKV_AWS_354:Performance Insights is off (CKV_AWS_353)
  #checkov:skip=CKV_AWS_157:multi_az is the user's choice (database.multi_az), off by default for cost
  #checkov:skip=CKV2_AWS_30:query logging costs per GB and shows the queries' values
  count = local.database_on ? 1 : 0

  identifier     = local.database_name
  engine         = "postgres"
  engine_version = var.database.engine_version
  instance_class = var.database.instance_class
  db_name        = local.database_db
  username       = local.database_user
  # RDS generates the password and keeps it in a Secrets Manager secret (encrypted with the
  # AWS-managed aws/secretsmanager key): nothing in clear text reaches the plan or the state.
  manage_master_user_password = true

  allocated_storage = var.database.allocated_storage
  storage_type      = "gp3"
  storage_encrypted = true

  db_subnet_group_name   = aws_db_subnet_group.this[0].name
  vpc_security_group_ids = [aws_security_group.database[0].id]
  parameter_group_name   = aws_db_parameter_group.this[0].name
  publicly_accessible    = false
  multi_az               = var.database.multi_az

  backup_retention_period    = var.database.backup_retention_days
  copy_tags_to_snapshot      = true
  auto_minor_version_upgrade = true
  # Only when engine_version names a new major: upgrading is then what the user asked for.
  allow_major_version_upgrade = true
  deletion_protection         = var.database.deletion_protection
  skip_final_snapshot         = false
  final_snapshot_identifier   = "${local.database_name}-final"

  tags = merge(var.tags, { "airtasks:cluster" = var.cluster_name })
}

# Every node reads the secret, exactly that one, with GetSecretValue only. No kms:Decrypt: RDS
# encrypts the secret with the AWS-managed key aws/secretsmanager, whose key policy lets Secrets
# Manager decrypt for any principal of the account that may read the secret (a customer managed
# key, master_user_secret_kms_key_id, would need a grant here).
data "aws_iam_policy_document" "database" {
  count = local.database_on ? 1 : 0

  statement {
    sid       = "ReadDatabasePassword"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_db_instance.this[0].master_user_secret[0].secret_arn]
  }
}

resource "aws_iam_role_policy" "database" {
  for_each = local.database_on ? local.node_roles : {}

  name   = "airtasks-database-secret"
  role   = each.value
  policy = data.aws_iam_policy_document.database[0].json
}
