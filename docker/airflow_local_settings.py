"""Airflow's local settings in the Air-Tasks image (/opt/airflow/config, on Airflow's sys.path).

Airflow imports this in every process before it creates its database engines, so two SQLAlchemy
listeners are in place for every new connection, the ORM's and Celery's result backend's in the
workers:
- client-side TCP keepalives (airtasks.stack.database_keepalive), so a connection to a PostgreSQL
  whose manager vanished fails within seconds instead of hanging for TCP's 15 minutes;
- with an external database (AIRTASKS_DATABASE_SECRET_ARN or _SECRET_NAME set), the re-read of a
  changed password (airtasks.stack.database_password); without one it does nothing.
Task processes (the Task SDK, including the process re-executed for run_as_user) never open the
metadata database in Airflow 3, they go through the API server, so they need nothing here.

A team that ships its own airflow_local_settings.py (policies, ...) replaces this file: keep the
lines below in it, or connections to a lost manager's database hang and, after each rotation, the
services cannot open new database connections until they restart.
"""

from airtasks.stack import database_keepalive, database_password

database_keepalive.install()
database_password.install()
# Airflow copies this module's public names into airflow.settings: leave none behind.
del database_keepalive, database_password
