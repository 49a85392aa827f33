"""Booking: what a patient or a therapist does with appointments that touches money or the plan (the gates before
a booking, its fee, the follow-up's bill, cancelling and moving with their settlement), above scheduling, billing
and prescribing, so that none of them needs another."""
