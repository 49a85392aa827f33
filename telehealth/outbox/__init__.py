"""The transactional outbox: jobs written in the same transaction as the change that causes them, and the
worker that runs them (in the app process by default, `litestar worker` in production)."""
