"""Benchmarks: measurements run by hand (`python -m benchmarks <name>`), never timed tests.

Each benchmark builds its own database on a PostgreSQL server, measures, and prints a Markdown report;
docs/benchmarks.md records the command, the machine and the figures of the last run.
"""
