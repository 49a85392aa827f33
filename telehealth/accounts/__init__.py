"""People who sign in: accounts, roles, sessions, passwords, two-factor, and who may see which patient."""
