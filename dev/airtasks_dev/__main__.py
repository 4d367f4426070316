"""`python -m airtasks_dev up|down`: what `make up` / `make down` run."""

from airtasks_dev.devstack.cli import main

main()
