cluster_name       = "demo"
ami_id             = "ami-785db401"
subnet_ids         = ["subnet-0123abcd", "subnet-4567ef01"]
security_group_ids = ["sg-0123abcd", "sg-4567ef01"]
stack              = { image = "ghcr.io/acme/airtasks:0.1.0" }
