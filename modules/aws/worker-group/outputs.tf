output "group_arn" {
  description = "ARN of the Auto Scaling group."
  value       = aws_autoscaling_group.this.arn
}

output "group_name" {
  description = "Name of the Auto Scaling group, `airtasks-<cluster>-<queue>` (what the scaler resizes)."
  value       = aws_autoscaling_group.this.name
}

output "launch_template_id" {
  description = "Id of the launch template."
  value       = aws_launch_template.this.id
}

output "lifecycle_hook_name" {
  description = "Name of the termination lifecycle hook the scaler completes after draining a node."
  value       = aws_autoscaling_lifecycle_hook.drain.name
}

output "max_size" {
  description = "Most instances in the group."
  value       = aws_autoscaling_group.this.max_size
}

output "min_size" {
  description = "Fewest instances in the group."
  value       = aws_autoscaling_group.this.min_size
}

output "role_arn" {
  description = "ARN of the workers' IAM role."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the workers' IAM role."
  value       = aws_iam_role.this.name
}
