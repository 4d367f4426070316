# What envs/local passes without a stack: no broker source, small volumes, no Elastic IP, the AMI
# looked up by name.
cluster_name             = "solo"
region                   = "us-east-1"
ami_name_pattern         = "ubuntu/images/hvm-ssd*/ubuntu-*-amd64-server-*"
manager_instance_type    = "t3.small"
manager_root_volume_size = 8
worker_root_volume_size  = 8
elastic_ip               = false
scaler                   = { airflow_url = "http://127.0.0.1:18080", rabbitmq_url = "", idle_seconds = 30 }

queues = {
  only = { instance_types = ["t3.small"], min_size = 0, max_size = 2, slots_per_node = 1 }
}
