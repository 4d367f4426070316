cloud  = "gcp"
bucket = "my-project-123-airtasks-demo-dags"

dag_bundles = [
  { name = "team", git = { url = "ssh://git@git.example.org/team/dags.git", ref = "v2", credential = "team-git-token" } },
  { name = "shared", bucket = { prefix = "shared/" } },
]
