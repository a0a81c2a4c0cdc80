"""Metrics: the Recorder, its records, summaries and invariant checks."""
