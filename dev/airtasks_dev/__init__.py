"""Air-Tasks development tooling: never shipped, never imported by the `airtasks` package.

- `devstack`: `make up` / `make down` (`python -m airtasks_dev up|down`): moto, `envs/local`
  applied, Airflow, MODE=swarm and MODE=cluster.
- `localcloud`: the local cloud, moto's EC2 instances as dockerds in network namespaces that boot
  from their user data (the cluster in a box; see localcloud/README.md).
- `images`: the stack's images, on the official Python base where it can be pulled and on a
  debootstrap Debian base elsewhere.

It lives in the checkout (`dev/`), on the path of the dev venv (a .pth file `make setup` writes)
and of pytest (`pythonpath` in pyproject.toml).
"""
