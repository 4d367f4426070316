cluster_name = "demo"
