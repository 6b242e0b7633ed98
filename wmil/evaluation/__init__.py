"""Reading run directories: criteria, evaluation and statistics."""
