locals {
  name = "airtasks-${var.cluster_name}-manager"
  tags = merge(var.tags, { "airtasks:cluster" = var.cluster_name })

  # Created with a placeholder; the manager's boot script writes the real values, and Terraform
  # ignores them (state never holds a token).
  placeholder      = "airtasks:pending"
  parameter_prefix = "/airtasks/${var.cluster_name}/swarm"
  parameters = {
    "worker-token"    = { type = "SecureString", description = "Swarm worker join token (written by the manager at boot)" }
    "manager-token"   = { type = "SecureString", description = "Swarm manager join token (written by the manager at boot)" }
    "manager-address" = { type = "String", description = "Swarm manager address <private ip>:2377 (written by the manager at boot)" }
  }

  arn_prefix = "arn:${data.aws_partition.current.partition}"
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
}

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

################################################################################
# SSM parameters: worker token, manager token, manager address
################################################################################

resource "aws_ssm_parameter" "this" {
  for_each = local.parameters

  name        = "${local.parameter_prefix}/${each.key}"
  description = each.value.description
  type        = each.value.type
  tags        = local.tags

  # Write-only: Terraform sends the placeholder once and keeps no value in state; the manager's
  # boot script writes the real one. (A plain `value` with ignore_changes would still be read
  # back into state by every refresh, token included.)
  value_wo         = local.placeholder
  value_wo_version = 1
}

################################################################################
# IAM: this cluster's parameters and worker groups, nothing else
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

data "aws_iam_policy_document" "manager" {
  statement {
    sid       = "ClusterParameters"
    actions   = ["ssm:GetParameter", "ssm:GetParameters", "ssm:PutParameter"]
    resources = ["${local.arn_prefix}:ssm:${local.region}:${local.account_id}:parameter/airtasks/${var.cluster_name}/*"]
  }

  statement {
    sid = "DescribeGroups" # Describe calls cannot be scoped to resources
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeAutoScalingInstances",
      "autoscaling:DescribeLifecycleHooks",
      "autoscaling:DescribeScalingActivities",
      "ec2:DescribeInstances",
    ]
    resources = ["*"]
  }

  statement {
    sid = "ResizeClusterGroups"
    actions = [
      "autoscaling:CompleteLifecycleAction",
      "autoscaling:RecordLifecycleActionHeartbeat",
      "autoscaling:SetDesiredCapacity",
      "autoscaling:SetInstanceProtection",
      "autoscaling:TerminateInstanceInAutoScalingGroup",
    ]
    resources = [
      "${local.arn_prefix}:autoscaling:${local.region}:${local.account_id}:autoScalingGroup:*:autoScalingGroupName/airtasks-${var.cluster_name}-*",
    ]
    # The name prefix alone would also match a cluster named "<cluster>-x"; the tag pins it.
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/airtasks:cluster"
      values   = [var.cluster_name]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = local.name
  description        = "Air-Tasks ${var.cluster_name} manager: its parameters, resize its worker groups"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "this" {
  name   = "airtasks-manager"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.manager.json
}

resource "aws_iam_instance_profile" "this" {
  name = local.name
  role = aws_iam_role.this.name
  tags = local.tags
}

################################################################################
# Manager VM
################################################################################

module "boot" {
  source = "../../swarm-boot"

  cloud               = "aws"
  role                = "manager"
  cluster_name        = var.cluster_name
  region              = local.region
  worker_token_ref    = aws_ssm_parameter.this["worker-token"].name
  manager_token_ref   = aws_ssm_parameter.this["manager-token"].name
  manager_address_ref = aws_ssm_parameter.this["manager-address"].name
  placeholder         = local.placeholder
  labels              = merge(var.labels, { "airtasks.queue" = "manager" })
  docker_install      = var.docker_install
  stack               = var.stack
}

resource "aws_instance" "this" {
  ami                    = var.ami_id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_id
  vpc_security_group_ids = var.security_group_ids
  iam_instance_profile   = aws_iam_instance_profile.this.name
  key_name               = var.key_name
  # Gzipped: the manager's script with its stack settings may pass EC2's 16 KiB (cloud-init unpacks it).
  user_data_base64 = module.boot.user_data_base64

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 2          # the scaler runs in a container on this VM
  }

  root_block_device {
    encrypted             = true
    volume_type           = "gp3"
    volume_size           = var.root_volume_size
    delete_on_termination = true
  }

  tags = merge(local.tags, {
    Name            = local.name
    "airtasks:role" = "manager"
    # The manager runs the `manager` queue's worker (the scaler DAG).
    "airtasks:queue" = "manager"
  })
  volume_tags = merge(local.tags, { Name = local.name })

  lifecycle {
    ignore_changes = [ami] # a newer AMI must not replace a running manager
  }

  # Placeholders first: the boot script overwrites them, never the other way round.
  depends_on = [aws_ssm_parameter.this, aws_iam_role_policy.this]
}

resource "aws_eip" "this" {
  count = var.elastic_ip ? 1 : 0

  domain   = "vpc"
  instance = aws_instance.this.id
  tags     = merge(local.tags, { Name = local.name })
}
