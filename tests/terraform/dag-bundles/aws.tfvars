cloud  = "aws"
bucket = "airtasks-demo-log-123456789012-us-east-1"
region = "us-east-1"

dag_bundles = [
  { name = "team", git = { url = "git@git.example.org:team/dags.git", credential = "/team/git-token" } },
  { name = "shared", bucket = { prefix = "shared/" } },
  { name = "etl", bucket = { prefix = "etl/daily/", refresh_seconds = 600 } },
]
