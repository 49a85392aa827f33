"""Development stand-ins shipped with the package (the demo uses them; production never does)."""
