"""Clinical notes: what a therapist or prescriber writes about a patient, for the care team only."""
