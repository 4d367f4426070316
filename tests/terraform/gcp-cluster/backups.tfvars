# backups set (every 15 minutes, kept 90 days): the backups' own bucket, its lifecycle rule, the
# managers' two grants on it, and what the managers' stack is rendered with. Task logs stay on, in
# their own bucket.
project_id   = "my-project-123"
region       = "europe-west1"
zones        = ["europe-west1-b", "europe-west1-c"]
cluster_name = "demo"
stack        = { image = "ghcr.io/acme/airtasks:1.0" }
backups      = { every_minutes = 15, retention_days = 90 }

queues = {
  default = { machine_type = "e2-standard-4", min_size = 0, max_size = 10, slots_per_node = 4 }
}
