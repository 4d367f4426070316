cluster_name = "demo"
region       = "us-east-1"
ami_id       = "ami-785db401"
task_logs    = null
backups      = null

queues = {
  default = { instance_types = ["t3.large"], min_size = 0, max_size = 10, slots_per_node = 4 }
}
