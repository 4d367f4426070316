# The cluster in a box's DAG bundles (tests/e2e/test_cluster_dags.py): a repository on the box's git
# server, named by the bridge's address and a port, and a folder of the cluster's bucket in moto.
stack = {
  image = "10.213.0.1:5000/airtasks:box"
}
dag_bundles = [
  { name = "team", git = { url = "https://10.213.0.1:40123/team.git", subdir = "dags", refresh_seconds = 10 } },
  { name = "shared", bucket = { prefix = "shared/", refresh_seconds = 10 } },
]
