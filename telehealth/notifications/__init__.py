"""Email: Jinja2 templates rendered and sent by a job (SMTP, or the development mailbox)."""
