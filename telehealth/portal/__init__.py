"""Role home pages: the place each role lands after signing in (later issues fill them)."""
