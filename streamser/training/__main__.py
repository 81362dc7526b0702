"""``python -m streamser.training train|evaluate|export`` (same handlers as ``streamser ...``)."""

from __future__ import annotations

import argparse
import sys

from streamser.training.commands import register


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run one training subcommand; returns its exit code."""
    parser = argparse.ArgumentParser(prog="python -m streamser.training")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
