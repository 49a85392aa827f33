"""Home dosing sessions: sitters and their links, scheduling a session, the check-in and every gate before
the dose, reports after it, serious events that pause the plan, and the troches on hand."""
