# task_logs left at its default ({ retention_days = 30 }): the bucket, its lifecycle rule, the grants
# of both worker groups and of the managers, and the URL the managers' stack is rendered with.
project_id   = "my-project-123"
region       = "europe-west1"
zones        = ["europe-west1-b", "europe-west1-c"]
cluster_name = "demo"
stack        = { image = "ghcr.io/acme/airtasks:1.0" }

queues = {
  default = { machine_type = "e2-standard-4", min_size = 0, max_size = 10, slots_per_node = 4 }
  batch   = { machine_type = "e2-highmem-4", min_size = 0, max_size = 20, slots_per_node = 2, spot = true }
}
