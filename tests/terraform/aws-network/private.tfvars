cluster_name       = "demo"
vpc_cidr           = "10.40.0.0/16"
availability_zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
private_subnets    = true
admin_cidrs        = ["203.0.113.7/32"]
web_cidrs          = ["0.0.0.0/0"]
