"""The append-only, hash-chained audit trail: who read or changed what, never the clinical values."""
