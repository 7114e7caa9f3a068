"""Google Cloud Run functions: the deployment script (deploy.py) and the RabbitMQ push bridge
(bridge.py). `python -m infra.deploy.gcp deploy|teardown [--dry-run]`."""
