"""Deployment to AWS: Lambda functions, an HTTP API per gateway, a schedule, MQ mappings.

    python -m infra.deploy.aws deploy [--dry-run] [--region R] [--bundle-dir dist] ...
    python -m infra.deploy.aws teardown [--dry-run] [--region R]

Everything is read from infra/functions.py; docs/deploy-aws.md explains each piece.
"""
