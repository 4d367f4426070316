locals {
  name = "airtasks-${var.cluster_name}"
  tags = merge(var.tags, { "airtasks:cluster" = var.cluster_name })

  azs = (
    var.availability_zones != null
    ? var.availability_zones
    : slice(data.aws_availability_zones.available[0].names, 0, var.az_count)
  )
  # Public subnets take the first /+8 blocks, private ones start at 128.
  public_subnets  = { for i, az in local.azs : az => cidrsubnet(var.vpc_cidr, 8, i) }
  private_subnets = var.private_subnets ? { for i, az in local.azs : az => cidrsubnet(var.vpc_cidr, 8, 128 + i) } : {}

  # Docker Swarm: cluster management, node gossip, overlay data plane. Only from inside the VPC.
  swarm_ports = {
    "swarm-management" = { protocol = "tcp", port = 2377 }
    "gossip-tcp"       = { protocol = "tcp", port = 7946 }
    "gossip-udp"       = { protocol = "udp", port = 7946 }
    "overlay-vxlan"    = { protocol = "udp", port = 4789 }
  }
}

data "aws_availability_zones" "available" {
  count = var.availability_zones == null ? 1 : 0
  state = "available"
}

################################################################################
# VPC, subnets, routes
################################################################################

resource "aws_vpc" "this" {
  #checkov:skip=CKV2_AWS_11:flow logs cost per GB and need a log destination; enable them account-wide or with an aws_flow_log on the vpc_id output
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = merge(local.tags, { Name = local.name })
}

# The VPC's default security group allows nothing: every node uses the groups below.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(local.tags, { Name = "${local.name}-default-unused" })
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(local.tags, { Name = local.name })
}

resource "aws_subnet" "public" {
  #checkov:skip=CKV_AWS_130:the public tier on purpose: the manager serves the UI, and workers without private_subnets reach packages and APIs without a NAT gateway
  for_each = local.public_subnets

  vpc_id                  = aws_vpc.this.id
  availability_zone       = each.key
  cidr_block              = each.value
  map_public_ip_on_launch = true
  tags                    = merge(local.tags, { Name = "${local.name}-public-${each.key}", "airtasks:tier" = "public" })
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  tags   = merge(local.tags, { Name = "${local.name}-public" })
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  for_each = aws_subnet.public

  subnet_id      = each.value.id
  route_table_id = aws_route_table.public.id
}

################################################################################
# Private subnets + NAT (optional)
################################################################################

resource "aws_subnet" "private" {
  for_each = local.private_subnets

  vpc_id            = aws_vpc.this.id
  availability_zone = each.key
  cidr_block        = each.value
  tags              = merge(local.tags, { Name = "${local.name}-private-${each.key}", "airtasks:tier" = "private" })
}

resource "aws_eip" "nat" {
  count = var.private_subnets ? 1 : 0

  domain = "vpc"
  tags   = merge(local.tags, { Name = "${local.name}-nat" })
}

resource "aws_nat_gateway" "this" {
  count = var.private_subnets ? 1 : 0

  allocation_id = aws_eip.nat[0].id
  subnet_id     = aws_subnet.public[local.azs[0]].id
  tags          = merge(local.tags, { Name = local.name })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "private" {
  count = var.private_subnets ? 1 : 0

  vpc_id = aws_vpc.this.id
  tags   = merge(local.tags, { Name = "${local.name}-private" })
}

resource "aws_route" "private_nat" {
  count = var.private_subnets ? 1 : 0

  route_table_id         = aws_route_table.private[0].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[0].id
}

resource "aws_route_table_association" "private" {
  for_each = aws_subnet.private

  subnet_id      = each.value.id
  route_table_id = aws_route_table.private[0].id
}

################################################################################
# Security groups
################################################################################

# Every node: Swarm ports from inside the VPC only, SSH from admin_cidrs only; out: anything
# inside the VPC, HTTPS and HTTP (packages, images, AWS APIs) beyond it. Tasks that reach other
# ports outside add rules to node_security_group_id (aws_vpc_security_group_egress_rule).
resource "aws_security_group" "node" {
  #checkov:skip=CKV2_AWS_5:attached by the swarm-manager and worker-group modules (node_security_group_id)
  name        = "${local.name}-node"
  description = "Air-Tasks ${var.cluster_name}: Swarm ports inside the VPC, SSH from admin CIDRs"
  vpc_id      = aws_vpc.this.id
  tags        = merge(local.tags, { Name = "${local.name}-node" })

  dynamic "ingress" {
    for_each = local.swarm_ports
    content {
      description = "Docker Swarm ${ingress.key} from inside the VPC"
      protocol    = ingress.value.protocol
      from_port   = ingress.value.port
      to_port     = ingress.value.port
      cidr_blocks = [var.vpc_cidr]
    }
  }

  dynamic "ingress" {
    for_each = length(var.admin_cidrs) > 0 ? [1] : []
    content {
      description = "SSH from admin CIDRs"
      protocol    = "tcp"
      from_port   = 22
      to_port     = 22
      cidr_blocks = var.admin_cidrs
    }
  }

  egress {
    description = "Anything to the other nodes (Swarm, overlay, stack services)"
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = [var.vpc_cidr]
  }

  dynamic "egress" {
    for_each = { https = 443, http = 80 }
    content {
      description = "${upper(egress.key)} out (packages, images, AWS APIs)"
      protocol    = "tcp"
      from_port   = egress.value
      to_port     = egress.value
      cidr_blocks = ["0.0.0.0/0"]
    }
  }
}

# The manager only: the UI and Flower behind the proxy, from web_cidrs.
resource "aws_security_group" "web" {
  #checkov:skip=CKV2_AWS_5:attached to the managers by the swarm-manager module (web_security_group_id)
  name        = "${local.name}-web"
  description = "Air-Tasks ${var.cluster_name}: HTTPS (and HTTP redirect) to the manager from web CIDRs"
  vpc_id      = aws_vpc.this.id
  tags        = merge(local.tags, { Name = "${local.name}-web" })

  dynamic "ingress" {
    for_each = length(var.web_cidrs) > 0 ? { https = 443, http = 80 } : {}
    content {
      description = "${upper(ingress.key)} from web CIDRs"
      protocol    = "tcp"
      from_port   = ingress.value
      to_port     = ingress.value
      cidr_blocks = var.web_cidrs
    }
  }
}
