"""Air-Tasks: run Airflow DAGs on an autoscaled Docker Swarm of cloud VMs."""

__version__ = "0.1.0"
