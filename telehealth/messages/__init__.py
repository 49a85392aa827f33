"""Secure messages between a patient and their care team, inside the portal only."""
