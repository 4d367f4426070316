cluster_name = "demo"
region       = "us-east-1"
ami_id       = "ami-785db401"
stack        = { image = "ghcr.io/acme/airtasks:1.0" }

queues = {
  default = { instance_types = ["t3.large"], min_size = 0, max_size = 10, slots_per_node = 4 }
}

# One bundle of each kind: a private repository (its token named, never given) and a folder of the
# cluster's bucket.
dag_bundles = [
  { name = "team", git = { url = "https://git.example.org/team/dags.git", ref = "main", subdir = "dags", credential = "/team/git-token" } },
  { name = "shared", bucket = { prefix = "shared/", refresh_seconds = 30 } },
]
