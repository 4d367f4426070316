output "availability_zones" {
  description = "The zones the subnets are in."
  value       = local.azs
}

output "node_security_group_id" {
  description = "Security group for every node (Swarm ports inside the VPC, SSH from `admin_cidrs`)."
  value       = aws_security_group.node.id
}

output "private_subnet_ids" {
  description = "Private subnet ids (empty unless `private_subnets`)."
  value       = [for az in local.azs : aws_subnet.private[az].id if var.private_subnets]
}

output "public_subnet_ids" {
  description = "Public subnet ids, one per zone."
  value       = [for az in local.azs : aws_subnet.public[az].id]
}

output "vpc_cidr" {
  description = "CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "vpc_id" {
  description = "Id of the VPC."
  value       = aws_vpc.this.id
}

output "web_security_group_id" {
  description = "Security group for the manager's web entry point (443/80 from `web_cidrs`)."
  value       = aws_security_group.web.id
}

output "worker_subnet_ids" {
  description = "Where worker groups go: the private subnets when `private_subnets`, else the public ones."
  value       = [for az in local.azs : (var.private_subnets ? aws_subnet.private[az].id : aws_subnet.public[az].id)]
}
