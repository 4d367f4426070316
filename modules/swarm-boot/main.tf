################################################################################
# Boot script
#
# The script is a rendered header of shell variables (templates/header.sh.tftpl)
# followed by static bash parts: common.sh, <cloud>.sh, <role>.sh. Only names
# and labels are rendered in; tokens are read from the secret store at boot.
################################################################################

locals {
  _engine_labels = merge(
    var.labels,
    {
      "airtasks.cluster" = var.cluster_name
      "airtasks.role"    = var.role
    },
    var.role == "worker" && var.queue != null ? { "airtasks.queue" = var.queue } : {},
  )

  # Only the settings this role on this cloud uses. Every value passed the
  # variable validations (no quotes, no spaces) and is single-quoted again, so
  # the header is plain data to bash.
  _settings = merge(
    {
      AIRTASKS_CLOUD               = var.cloud
      AIRTASKS_ROLE                = var.role
      AIRTASKS_CLUSTER             = var.cluster_name
      AIRTASKS_WORKER_TOKEN_REF    = var.worker_token_ref
      AIRTASKS_MANAGER_ADDRESS_REF = var.manager_address_ref
      AIRTASKS_PLACEHOLDER         = var.placeholder
      AIRTASKS_DOCKER_INSTALL      = var.docker_install ? "true" : "false"
      AIRTASKS_JOIN_TIMEOUT        = tostring(var.join_timeout_seconds)
    },
    (var.cloud == "aws"
      ? { AIRTASKS_REGION = var.region == null ? "" : var.region }
      : { AIRTASKS_PROJECT = var.project_id == null ? "" : var.project_id }
    ),
    (var.role == "manager"
      ? {
        AIRTASKS_MANAGER_TOKEN_REF = var.manager_token_ref == null ? "" : var.manager_token_ref
        AIRTASKS_MANAGER_COUNT     = tostring(var.manager_count)
        AIRTASKS_STACK_IMAGE       = var.stack == null ? "" : var.stack.image
        AIRTASKS_STACK_NAME        = var.stack == null ? "" : var.stack.name
        # deploy_stack (templates/manager.sh): what the stack is rendered and deployed with.
        AIRTASKS_STACK_QUEUES         = var.stack == null ? "" : join(" ", [for q in sort(keys(var.stack.queues)) : join(":", compact(["${q}", "${var.stack.queues[q]}", try("${var.stack.queue_max_nodes[q]}", "")]))])
        AIRTASKS_STACK_SCALER_CONFIG  = try(coalesce(var.stack.scaler_config, ""), "")
        AIRTASKS_STACK_POSTGRES_IMAGE = try(coalesce(var.stack.postgres_image, ""), "")
        AIRTASKS_STACK_RABBITMQ_IMAGE = try(coalesce(var.stack.rabbitmq_image, ""), "")
        AIRTASKS_STACK_PROXY_IMAGE    = try(coalesce(var.stack.proxy_image, ""), "")
        AIRTASKS_STACK_OVERRIDE       = try(coalesce(var.stack.compose_override, ""), "")
        AIRTASKS_STACK_TLS_HOSTNAMES  = var.stack == null ? "" : join(" ", var.stack.tls_hostnames)
        AIRTASKS_STACK_TASK_LOGS      = try(coalesce(var.stack.task_logs, ""), "")
        AIRTASKS_STACK_DAG_BUNDLES    = try(coalesce(var.stack.dag_bundles, ""), "")
        AIRTASKS_STACK_DATABASE       = try(coalesce(var.stack.database, ""), "")
        AIRTASKS_STACK_BACKUPS        = try(coalesce(var.stack.backups, ""), "")
      }
      : {
        AIRTASKS_QUEUE = var.queue == null ? "" : var.queue
      }
    ),
    (var.cloud == "gcp" && var.role == "manager"
      ? { AIRTASKS_INIT_MANAGER = var.init_manager == null ? "" : var.init_manager }
      : {}
    ),
  )

  # Spot workers also get templates/spot.sh, with the watcher (a Python file, so that tests run
  # the very code a node runs) embedded in its heredoc.
  _parts = concat(
    [for part in ["common", var.cloud, var.role] : file("${path.module}/templates/${part}.sh")],
    var.spot ? [replace(
      file("${path.module}/templates/spot.sh"),
      "@SPOT_WATCHER_PY@",
      trimsuffix(file("${path.module}/templates/spot_watcher.py"), "\n"),
    )] : [],
  )

  script = templatefile("${path.module}/templates/header.sh.tftpl", {
    cloud    = var.cloud
    role     = var.role
    settings = { for k, v in local._settings : k => "'${replace(v, "'", "'\\''")}'" }
    labels   = [for k in sort(keys(local._engine_labels)) : "'${k}=${local._engine_labels[k]}'"]
    body = join("\n", [
      for part in local._parts : join("\n", [
        # Whole-line comments stay in the templates: EC2 takes 16 KiB of user data.
        for line in split("\n", part) : line
        if !can(regex("^\\s*#($|[^!])", line)) || can(regex("shellcheck", line))
      ])
    ])
  })

  user_data_base64 = base64gzip(local.script)
}
