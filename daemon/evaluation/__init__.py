"""`neural-fill eval`'s library: methods, samples, metrics, report and grids."""
