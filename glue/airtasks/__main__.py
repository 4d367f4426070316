"""`python -m airtasks` is the same as the `airtasks` command."""

from airtasks.cli import main

if __name__ == "__main__":
    main()
