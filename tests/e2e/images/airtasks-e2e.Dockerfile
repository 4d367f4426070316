# The Air-Tasks image plus the e2e test DAGs (tests/e2e/dags/): what the cluster-in-a-box chain
# deploys, so the product image never carries test DAGs. Built by tests/e2e/chain.py.
ARG BASE_IMAGE=airtasks:latest
FROM ${BASE_IMAGE}
COPY --chown=50000:0 dags/ /opt/airflow/dags/e2e/
