"""Backups of Airflow's metadata database when it runs in the stack (the `postgres` service).

- `settings`: where backups go and how often (`--backups` JSON, rendered by Terraform);
- `store`: the bucket that keeps them (S3 here; one object per backup);
- `postgres`: `pg_dump`, `pg_restore` and the questions asked of the database;
- `keeper`: the `db-backup` service's loop: restore into an empty database, back up when due.
"""
