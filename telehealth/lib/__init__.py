"""Small shared pieces: errors, the clock, transition tables, US states."""
