queue        = "default"
machine_type = "e2-standard-4"
min_size     = 0
max_size     = 10
gcp_labels   = { team = "data" }
