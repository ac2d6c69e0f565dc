"""Statistics of gradient samples, collection of run directories and tables (no torch)."""
