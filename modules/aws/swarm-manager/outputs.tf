output "group_name" {
  description = "Name of the managers' Auto Scaling group (`airtasks-<cluster>-manager`, fixed size `manager_count`)."
  value       = aws_autoscaling_group.this.name
}

output "instance_id" {
  description = "Instance id of the first manager (lowest id; also its hostname and Swarm node name)."
  value       = try(local.instance_ids[0], null)
}

output "instance_ids" {
  description = "Instance ids of the running managers, lowest first."
  value       = local.instance_ids
}

output "manager_address_parameter" {
  description = "SSM parameter name of the manager's Swarm address."
  value       = aws_ssm_parameter.this["manager-address"].name
}

output "manager_token_parameter" {
  description = "SSM parameter name of the Swarm manager join token (SecureString; name only, never the value)."
  value       = aws_ssm_parameter.this["manager-token"].name
}

output "parameter_arns" {
  description = "ARNs of the three parameters, by key (`worker-token`, `manager-token`, `manager-address`)."
  value       = { for k, p in aws_ssm_parameter.this : k => p.arn }
}

output "private_ip" {
  description = "Private address of the first manager (its Swarm advertise address)."
  value       = try(local.private_ips[0], null)
}

output "private_ips" {
  description = "Private addresses of the running managers, in the order of `instance_ids`."
  value       = local.private_ips
}

output "public_ip" {
  description = "Public address of the first manager (the Elastic IP when `elastic_ip`), or null."
  value       = var.elastic_ip ? aws_eip.this[0].public_ip : try(local._public_by_id[local.instance_ids[0]], null)
}

output "role_arn" {
  description = "ARN of the manager's IAM role."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the manager's IAM role."
  value       = aws_iam_role.this.name
}

output "worker_token_parameter" {
  description = "SSM parameter name of the Swarm worker join token (SecureString; name only, never the value)."
  value       = aws_ssm_parameter.this["worker-token"].name
}
