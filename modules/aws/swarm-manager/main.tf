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
  #checkov:skip=CKV_AWS_337:the AWS-managed aws/ssm key: only roles allowed ssm:GetParameter on a parameter decrypt it, a CMK would add a key policy but no narrower reader
  #checkov:skip=CKV2_AWS_34:manager-address is a private IP, not a secret; both tokens are SecureString
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
    # Worker groups only: the managers' own group is not the scaler's to resize.
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/airtasks:role"
      values   = ["worker"]
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
# Managers: an Auto Scaling group of fixed size (1, 3 or 5)
#
# A lost manager is replaced by the group and joins the Swarm again as a manager
# (modules/swarm-boot: the lowest live manager instance id initialises a new
# Swarm, every other manager joins; the Swarm leader removes lost managers).
################################################################################

data "aws_ami" "this" { # for the root device name, which differs between distributions
  filter {
    name   = "image-id"
    values = [var.ami_id]
  }
}

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
  manager_count       = var.manager_count
  labels              = merge(var.labels, { "airtasks.queue" = "manager" })
  docker_install      = var.docker_install
  stack               = var.stack
}

resource "aws_launch_template" "this" {
  #checkov:skip=CKV_AWS_341:hop limit 2 on purpose: the scaler and the database backups run in containers on the manager and need the instance role
  name                   = local.name
  description            = "Air-Tasks ${var.cluster_name} Swarm manager"
  image_id               = var.ami_id
  instance_type          = var.instance_type
  key_name               = var.key_name
  vpc_security_group_ids = var.security_group_ids
  user_data              = module.boot.user_data_base64 # gzip: EC2 takes 16 KiB of user data
  update_default_version = true
  ebs_optimized          = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.this.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 2          # the scaler and db-backup run in containers here
  }

  monitoring {
    enabled = true
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
    tags          = merge(local.tags, { Name = local.name })
  }

  # Placeholders first: the boot script overwrites them, never the other way round.
  depends_on = [aws_ssm_parameter.this, aws_iam_role_policy.this]
}

resource "aws_autoscaling_group" "this" {
  name                = local.name
  min_size            = var.manager_count
  max_size            = var.manager_count
  desired_capacity    = var.manager_count
  vpc_zone_identifier = var.subnet_ids
  health_check_type   = "EC2"

  launch_template {
    id      = aws_launch_template.this.id
    version = "$Latest"
  }

  # Wait for the managers, so the addresses below are known after the first apply.
  wait_for_capacity_timeout = "10m"

  dynamic "tag" {
    for_each = merge(local.tags, {
      Name            = local.name
      "airtasks:role" = "manager"
      # The managers run the `manager` queue's worker (the scaler DAG).
      "airtasks:queue" = "manager"
    })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  # A new AMI or script is a new template version: replaced managers get it, running ones stay.
}

# The managers as they run now, lowest instance id first (the one that initialised the Swarm,
# unless it was replaced since).
data "aws_instances" "this" {
  instance_tags = {
    "airtasks:cluster" = var.cluster_name
    "airtasks:role"    = "manager"
  }
  instance_state_names = ["pending", "running"]

  depends_on = [aws_autoscaling_group.this]
}

locals {
  _by_id        = zipmap(data.aws_instances.this.ids, data.aws_instances.this.private_ips)
  _public_by_id = zipmap(data.aws_instances.this.ids, data.aws_instances.this.public_ips)
  instance_ids  = sort(data.aws_instances.this.ids)
  private_ips   = [for id in local.instance_ids : local._by_id[id]]
}

# The web entry point: the first manager's Elastic IP (re-pointed by the next apply if that
# manager is replaced; the proxy runs on a manager, see the README on manager_count).
resource "aws_eip" "this" {
  #checkov:skip=CKV2_AWS_19:attached through `instance` to the first manager, an id from a data source that checkov's graph does not always resolve
  count = var.elastic_ip ? 1 : 0

  domain   = "vpc"
  instance = try(local.instance_ids[0], null)
  tags     = merge(local.tags, { Name = local.name })
}
