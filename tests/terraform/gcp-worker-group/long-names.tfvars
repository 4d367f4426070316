# Longest valid names: 22-character cluster, 31-character queue.
cluster_name = "abcdefghij-klmnopqrstu"
queue        = "q23456789-123456789-123456789-z"
machine_type = "e2-standard-2"
max_size     = 3
secret_ids = {
  worker_token    = "airtasks-abcdefghij-klmnopqrstu-worker-token"
  manager_token   = "airtasks-abcdefghij-klmnopqrstu-manager-token"
  manager_address = "airtasks-abcdefghij-klmnopqrstu-manager-address"
}
