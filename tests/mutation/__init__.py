"""A mutation check of the safety rules, run by hand: `python -m tests.mutation` (see docs/mutation.md).

Each mutant in mutants.py breaks one rule with one small change to the service code; the check applies it,
runs the tests aimed at that rule and expects them to fail ("killed"). Nothing here is a pytest test file,
so `python -m pytest` never collects it.
"""
