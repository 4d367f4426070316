# backups = null: the stack's own PostgreSQL, not dumped anywhere (task logs stay on).
cluster_name = "demo"
region       = "us-east-1"
ami_id       = "ami-785db401"
stack        = { image = "ghcr.io/acme/airtasks:1.0" }
backups      = null

queues = {
  default = { instance_types = ["t3.large"], min_size = 0, max_size = 10, slots_per_node = 4 }
}
