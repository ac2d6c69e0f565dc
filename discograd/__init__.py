"""discograd: the glue between estimators, tasks and analysis (CLI, run loop, probe, devices)."""
