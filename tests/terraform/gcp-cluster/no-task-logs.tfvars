# task_logs = null: no log bucket, no grant on one, no custom role but the scaler's; logs stay on the
# nodes. Backups keep their own bucket.
project_id   = "my-project-123"
region       = "europe-west1"
zones        = ["europe-west1-b", "europe-west1-c"]
cluster_name = "demo"
stack        = { image = "ghcr.io/acme/airtasks:1.0" }
task_logs    = null

queues = {
  default = { machine_type = "e2-standard-4", min_size = 0, max_size = 10, slots_per_node = 4 }
}
