"""Clinician credentials: state licenses and DEA registrations, the one source of truth for who may
see whom (slots), which states are served (waiting list) and who may sign a plan (prescribing)."""
