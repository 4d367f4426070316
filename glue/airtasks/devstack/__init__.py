"""`make up` / `make down`: the local Air-Tasks deployments (`airtasks dev up|down`)."""
