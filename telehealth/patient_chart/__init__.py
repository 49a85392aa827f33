"""The care team's page for one patient: summary, timeline, flags, plan, sessions, messages, notes, scores."""
