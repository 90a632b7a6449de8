"""Run kws from a checkout without installing it: `python cli.py --help`."""

from kws.cli import main

if __name__ == "__main__":
    main()
