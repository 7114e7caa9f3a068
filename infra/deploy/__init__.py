"""Deployment: per-function bundles, docker-compose.yml, AWS and Google Cloud."""
