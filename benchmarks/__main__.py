"""`python -m benchmarks <name>`: run one benchmark (from the project root)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from benchmarks import growth, scheduling, suite, waitlist, webhooks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    benchmarks = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    waitlist.add_arguments(
        benchmarks.add_parser("waitlist", help="join, position lookup and invite-next with 1,000,000 entries", description=waitlist.__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    )  # fmt: skip
    scheduling.add_arguments(
        benchmarks.add_parser("scheduling", help="14-day slot search over 200 prescribers; 50 clients racing to book 10 slots",
                              description=scheduling.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )  # fmt: skip
    webhooks.add_arguments(
        benchmarks.add_parser("webhooks", help="1,000 signed Stripe webhook deliveries (30%% repeats, shuffled) from 20 clients",
                              description=webhooks.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )  # fmt: skip
    suite.add_arguments(
        benchmarks.add_parser("suite", help="every scenario against the framework's and the database's ceilings; memory under load",
                              description=suite.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )  # fmt: skip
    growth.add_arguments(
        benchmarks.add_parser("growth", help="waiting-list position and slot search at 1x, 10x and 100x data, in-process",
                              description=growth.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )  # fmt: skip
    args = parser.parse_args(argv)
    runners = {"waitlist": waitlist.run, "scheduling": scheduling.run, "webhooks": webhooks.run, "suite": suite.run, "growth": growth.run}
    return asyncio.run(runners[args.benchmark](args))


if __name__ == "__main__":
    sys.exit(main())
