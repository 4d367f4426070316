# Private repositories: one secret by id (this project), one named in full (another project), and a
# public repository that names none. The managers' service account may access exactly the two.
project_id   = "my-project-123"
region       = "europe-west1"
zones        = ["europe-west1-b"]
cluster_name = "demo"
stack        = { image = "ghcr.io/acme/airtasks:1.0" }

queues = {
  default = { machine_type = "e2-standard-4", min_size = 0, max_size = 10, slots_per_node = 4 }
}

dag_bundles = [
  { name = "team", git = { url = "https://git.example.org/team/dags.git", credential = "team-git-token" } },
  { name = "ops", git = { url = "git@git.example.org:ops/dags.git", credential = "projects/keys-456/secrets/ops-deploy-key" } },
  { name = "public", git = { url = "https://git.example.org/public/dags.git" } },
]
