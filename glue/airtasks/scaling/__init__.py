"""The scaling pass: read (`read`), decide (`airtasks.decide`), act (`scaler`), report (`report`),
on an interval (`loop`), and the scaler DAG's task (`task`)."""
