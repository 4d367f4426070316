"""The Airflow stack a manager deploys: rendering the Swarm stack file and creating its secrets."""
