"""The operations view: the cluster, its queues and every scaling decision, in the Airflow UI
(`plugin`: an Airflow 3 plugin) and in `airtasks status` — both built by `view.build_view`."""
