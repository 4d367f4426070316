admin_cidrs  = ["203.0.113.7/32"]
ssh_from_iap = true
web_cidrs    = ["198.51.100.0/24"]
subnet_cidr  = "10.42.0.0/22"
