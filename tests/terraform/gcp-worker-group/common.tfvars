project_id   = "my-project-123"
cluster_name = "demo"
region       = "europe-west1"
zones        = ["europe-west1-b", "europe-west1-c", "europe-west1-d"]
subnetwork   = "projects/my-project-123/regions/europe-west1/subnetworks/airtasks-demo"
network_tags = ["airtasks-demo-node"]
secret_ids = {
  worker_token    = "airtasks-demo-worker-token"
  manager_token   = "airtasks-demo-manager-token"
  manager_address = "airtasks-demo-manager-address"
}
