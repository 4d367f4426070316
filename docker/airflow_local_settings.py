"""Airflow's local settings in the Air-Tasks image (/opt/airflow/config, on Airflow's sys.path).

Airflow imports this in every process before it creates its database engines, so the listener
that re-reads a rotated RDS password (airtasks.stack.database_password) is in place for every new
connection: the ORM's, and Celery's result backend in the workers. Without an external database
(AIRTASKS_DATABASE_SECRET_ARN unset) it does nothing. Task processes (the Task SDK, including the
process re-executed for run_as_user) never open the metadata database in Airflow 3, they go through
the API server, so they need nothing here.

A team that ships its own airflow_local_settings.py (policies, ...) replaces this file: keep the
two lines below in it, or after each rotation the services cannot open new database connections
until they restart.
"""

from airtasks.stack import database_password

database_password.install()
# Airflow copies this module's public names into airflow.settings: leave none behind.
del database_password
