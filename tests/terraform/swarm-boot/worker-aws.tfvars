cloud               = "aws"
role                = "worker"
cluster_name        = "demo"
queue               = "default"
region              = "eu-west-1"
worker_token_ref    = "/airtasks/demo/swarm/worker-token"
manager_address_ref = "/airtasks/demo/swarm/manager-address"
labels              = { "gpu" = "none" }
