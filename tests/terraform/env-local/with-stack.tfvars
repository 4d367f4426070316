# The cluster in a box: the manager deploys the stack at boot and its scaler reads the stack's own
# services (make up MODE=cluster, tests/e2e/test_cluster.py).
stack = {
  image = "10.213.0.1:5000/airtasks:box"
}
