"""Quality: scores, drift, gates, comparison and the report."""
