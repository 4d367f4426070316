output "instance_id" {
  description = "Instance id of the manager (also its hostname and Swarm node name)."
  value       = aws_instance.this.id
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
  description = "Private address of the manager (Swarm advertise address)."
  value       = aws_instance.this.private_ip
}

output "public_ip" {
  description = "Public address of the manager (the Elastic IP when `elastic_ip`), or null."
  value       = var.elastic_ip ? aws_eip.this[0].public_ip : aws_instance.this.public_ip
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
