project_id   = "my-project-123"
region       = "europe-west1"
zones        = ["europe-west1-b", "europe-west1-c", "europe-west1-d"]
cluster_name = "demo"
web_cidrs    = ["198.51.100.0/24"]
ssh_from_iap = true
stack        = { image = "ghcr.io/acme/airtasks:1.0" }

queues = {
  default = { machine_type = "e2-standard-4", min_size = 0, max_size = 10, slots_per_node = 4, learn_durations = true }
  batch   = { machine_type = "e2-highmem-4", min_size = 0, max_size = 20, slots_per_node = 2, spot = true, pack = true }
  reports = { machine_type = "e2-standard-2", min_size = 1, max_size = 3, slots_per_node = 1, prescale = false }
}
