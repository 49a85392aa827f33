"""Database plumbing: engine and sessions, types, the embedded server, migrations."""
