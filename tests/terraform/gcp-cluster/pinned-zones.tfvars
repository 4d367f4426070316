# zones given (planning without them reads the region's zones from the API): the pin holds them as
# given, the data source is not read, the MIGs and the three managers use them in this order.
project_id    = "my-project-123"
region        = "europe-west1"
zones         = ["europe-west1-c", "europe-west1-b", "europe-west1-d"]
cluster_name  = "demo"
manager_count = 3
stack         = { image = "ghcr.io/acme/airtasks:1.0" }

queues = {
  default = { machine_type = "e2-standard-4", min_size = 0, max_size = 10, slots_per_node = 4 }
  batch   = { machine_type = "e2-highmem-4", min_size = 0, max_size = 20, slots_per_node = 2, spot = true }
}
