"""`python -m airtasks_dev up|down`: the local deployment behind `make up` / `make down`.

A deployment is an ordered list of steps (`steps.Step`); `up` runs them in order and records each
one in `.run/state.json`, `down` undoes the recorded ones in reverse. Mode `local` is: a moto
server (the AWS API), then `envs/local` applied against it. Further steps (Airflow standalone and
the scaler DAG) append to `LOCAL_STEPS` in `steps.py`.
"""
