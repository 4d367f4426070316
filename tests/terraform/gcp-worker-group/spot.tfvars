queue        = "batch"
machine_type = "e2-highmem-4"
min_size     = 1
max_size     = 20
spot         = true
