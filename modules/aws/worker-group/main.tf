locals {
  name = "airtasks-${var.cluster_name}-${var.queue}"
  tags = merge(var.tags, {
    "airtasks:cluster" = var.cluster_name
    "airtasks:queue"   = var.queue
    "airtasks:role"    = "worker"
    Name               = local.name
  })

  # A mixed instances policy when the queue wants spot or more than one type; spot means 0% and
  # on-demand 100% above a base of 0 (nothing in between: keep the cost model simple).
  mixed = var.spot || length(var.instance_types) > 1

  arn_prefix = "arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter"
  # The only two things a worker may read.
  readable_parameters = [
    "${local.arn_prefix}${var.worker_token_parameter}",
    "${local.arn_prefix}${var.manager_address_parameter}",
  ]
}

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

data "aws_ami" "this" { # for the root device name, which differs between distributions
  filter {
    name   = "image-id"
    values = [var.ami_id]
  }
}

################################################################################
# IAM: read the worker token and the manager address, nothing else
################################################################################

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "worker" {
  statement {
    sid       = "ReadJoinInfo"
    actions   = ["ssm:GetParameter"]
    resources = local.readable_parameters
  }
}

resource "aws_iam_role" "this" {
  name               = local.name
  description        = "Air-Tasks ${var.cluster_name} workers of queue ${var.queue}: read the Swarm join info"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "this" {
  name   = "airtasks-worker"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.worker.json
}

resource "aws_iam_instance_profile" "this" {
  name = local.name
  role = aws_iam_role.this.name
  tags = local.tags
}

################################################################################
# Launch template
################################################################################

module "boot" {
  source = "../../swarm-boot"

  cloud                = "aws"
  role                 = "worker"
  cluster_name         = var.cluster_name
  queue                = var.queue
  region               = data.aws_region.current.name
  worker_token_ref     = var.worker_token_parameter
  manager_address_ref  = var.manager_address_parameter
  labels               = var.labels
  join_timeout_seconds = var.join_timeout_seconds
  docker_install       = var.docker_install
  spot                 = var.spot
}

resource "aws_launch_template" "this" {
  #checkov:skip=CKV_AWS_341:2 only with task logs on (the cluster module): the Celery worker's container uploads them with the node's role
  name                   = local.name
  description            = "Air-Tasks ${var.cluster_name} worker, queue ${var.queue}"
  image_id               = var.ami_id
  instance_type          = var.instance_types[0]
  key_name               = var.key_name
  vpc_security_group_ids = var.security_group_ids
  user_data              = module.boot.user_data_base64 # gzip: a spot worker's script is over 16 KiB
  update_default_version = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.this.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = var.metadata_hop_limit
  }

  # The OS hostname is the instance id from the start (the boot script sets it again).
  private_dns_name_options {
    hostname_type = "resource-name"
  }

  block_device_mappings {
    device_name = data.aws_ami.this.root_device_name
    ebs {
      encrypted             = true
      volume_type           = "gp3"
      volume_size           = var.root_volume_size
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "volume"
    tags          = local.tags
  }

  # No `tags` on the template itself: the group, its instances and volumes carry them, and the
  # local endpoint (moto) folds template tags into the template data, which would never re-plan clean.
}

################################################################################
# Auto Scaling group
################################################################################

resource "aws_autoscaling_group" "this" {
  name                = local.name
  min_size            = var.min_size
  max_size            = var.max_size
  desired_capacity    = var.min_size
  vpc_zone_identifier = var.subnet_ids
  health_check_type   = "EC2"

  # Only the scaler removes nodes, one exact idle instance at a time
  # (terminate-instance-in-auto-scaling-group with decrement): nothing else may pick victims.
  protect_from_scale_in = true
  suspended_processes   = ["AZRebalance"]
  # `terraform destroy` cannot drain protected instances: delete the group with them.
  force_delete = true

  # Spot: launch a replacement as soon as EC2 recommends a rebalance, before the 2-minute notice.
  capacity_rebalance = var.spot

  # Do not wait for instances to boot: the scaler owns the size from here on.
  wait_for_capacity_timeout = "0"

  dynamic "launch_template" {
    for_each = local.mixed ? [] : [1]
    content {
      id      = aws_launch_template.this.id
      version = "$Latest"
    }
  }

  dynamic "mixed_instances_policy" {
    for_each = local.mixed ? [1] : []
    content {
      instances_distribution {
        on_demand_base_capacity                  = 0
        on_demand_percentage_above_base_capacity = var.spot ? 0 : 100
        spot_allocation_strategy                 = "price-capacity-optimized"
      }
      launch_template {
        launch_template_specification {
          launch_template_id = aws_launch_template.this.id
          version            = "$Latest"
        }
        dynamic "override" {
          for_each = var.instance_types
          content {
            instance_type = override.value
          }
        }
      }
    }
  }

  dynamic "tag" {
    for_each = local.tags
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    ignore_changes = [desired_capacity] # size belongs to the scaler, not to Terraform

    precondition {
      condition     = var.min_size <= var.max_size
      error_message = "min_size (${var.min_size}) must not exceed max_size (${var.max_size}) for queue ${var.queue}: lower min_size or raise max_size."
    }
  }
}

# Every termination (the scaler's, a spot reclaim, a health replacement) waits in
# Terminating:Wait until the scaler has drained the node or the heartbeat times out.
resource "aws_autoscaling_lifecycle_hook" "drain" {
  name                   = "airtasks-drain"
  autoscaling_group_name = aws_autoscaling_group.this.name
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_TERMINATING"
  default_result         = "CONTINUE"
  heartbeat_timeout      = var.drain_timeout_seconds

  lifecycle {
    # No notification target: the scaler completes the action by API. Ignore what the API
    # reports for these (the local endpoint reports dummy values).
    ignore_changes = [notification_target_arn, role_arn]
  }
}
