"""The waiting list: join with double opt-in, one queue per state, status and erasure by emailed link,
coordinator invitations that expire and move on to the next person."""
