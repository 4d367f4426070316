cluster_name = "demo"
region       = "us-east-1"
ami_id       = "ami-785db401"
web_cidrs    = ["203.0.113.0/24"]

queues = {
  default = { instance_types = ["t3.large"], min_size = 0, max_size = 10, slots_per_node = 4, learn_durations = true }
  io      = { instance_types = ["t3.medium"], min_size = 1, max_size = 3, slots_per_node = 16, prescale = false }
  heavy   = { instance_types = ["m6i.2xlarge", "m5.2xlarge"], min_size = 0, max_size = 5, slots_per_node = 8, spot = true, pack = true }
}
