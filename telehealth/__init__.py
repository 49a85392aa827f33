"""Coordination service for at-home ketamine programs."""
