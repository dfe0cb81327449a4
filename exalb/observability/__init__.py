"""What every exalb process exposes to operators: structured logs, metrics and health."""
