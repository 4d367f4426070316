stack      = { image = "ghcr.io/acme/airtasks:1.0" }
gcp_labels = { team = "data" }
