project_id   = "my-project-123"
cluster_name = "demo"
zone         = "europe-west1-b"
subnetwork   = "projects/my-project-123/regions/europe-west1/subnetworks/airtasks-demo"
network_tags = ["airtasks-demo-node", "airtasks-demo-manager"]
