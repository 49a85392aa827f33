"""Measurement-based care: each patient's PHQ-9 and GAD-7 over time as server-drawn SVG charts, and the
program's de-identified outcomes for coordinators (page and CSV)."""
