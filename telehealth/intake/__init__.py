"""Intake: the questionnaires, the screening rules and (later) the multi-step intake form."""
