# envs/local with its defaults (what `make up` applies).
