"""A patient's record to take with them: a FHIR R4 (R4B) Bundle and a readable summary (with a print view)."""
