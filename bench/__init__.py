"""`make bench`: simulator tables, scaling-pass timing and reaction time (see __main__.py)."""
