"""Benchmarks: env steps, wall time and requests to mastery (`wmil bench`); apart from the pipeline."""
