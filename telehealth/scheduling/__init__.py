"""Scheduling: availability, slots, appointments that cannot double-book, video rooms, invites, reminders."""
