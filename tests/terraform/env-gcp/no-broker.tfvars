project_id   = "my-project-123"
region       = "us-central1"
zones        = ["us-central1-a", "us-central1-f"]
cluster_name = "solo"
queues       = { only = { machine_type = "e2-small", min_size = 0, max_size = 1, slots_per_node = 1 } }
scaler       = { rabbitmq_url = "", idle_seconds = 30 }
