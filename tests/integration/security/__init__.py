"""Findings of issue 20 (item 4, accounts): one module per finding, each test failing without its fix."""
