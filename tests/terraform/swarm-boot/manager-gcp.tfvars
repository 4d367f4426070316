cloud               = "gcp"
role                = "manager"
cluster_name        = "demo"
project_id          = "demo-project"
worker_token_ref    = "airtasks-demo-worker-token"
manager_token_ref   = "airtasks-demo-manager-token"
manager_address_ref = "airtasks-demo-manager-address"
stack               = { image = "ghcr.io/acme/airtasks:0.1.0" }
