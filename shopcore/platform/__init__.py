"""What every function stands on: HTTP, Lambda adapters, logs, config, pools, JSON."""
