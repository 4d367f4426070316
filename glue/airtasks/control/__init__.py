"""Stopping nodes from taking tasks: Celery's worker control and the Swarm's node API."""
