project_id   = "my-project-123"
cluster_name = "demo"
region       = "europe-west1"
