"""`python -m benchmarks <name>`: run one benchmark (from the project root)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from benchmarks import floor, growth, scheduling, suite, waitlist, webhooks

# name -> (module with add_arguments, run and a docstring; the one-line help)
BENCHMARKS = {
    "waitlist": (waitlist, "join, position lookup and invite-next with 1,000,000 entries"),
    "scheduling": (scheduling, "14-day slot search over 200 prescribers; 50 clients racing to book 10 slots"),
    "webhooks": (webhooks, "1,000 signed Stripe webhook deliveries (30%% repeats, shuffled) from 20 clients"),
    "suite": (suite, "every scenario against the framework's and the database's ceilings; memory under load"),
    "floor": (floor, "the suite cut to the scenarios with a stack floor, and the floor (no soak, race or pgbench)"),
    "growth": (growth, "waiting-list position and slot search at 1x, 10x and 100x data, in-process"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    subcommands = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, (module, summary) in BENCHMARKS.items():
        module.add_arguments(
            subcommands.add_parser(name, help=summary, description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        )
    args = parser.parse_args(argv)
    return asyncio.run(BENCHMARKS[args.benchmark][0].run(args))


if __name__ == "__main__":
    sys.exit(main())
