"""analytics on AWS Lambda (GET /api/analytics/...).

API Gateway HTTP API events (payload 2.0) go into the same functions-framework app as main.py,
so routing, validation and errors are exactly main.py's.
"""

from typing import Any

from shopcore.platform import aws_lambda

_serve = aws_lambda.http_handler("analytics", __file__)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _serve(event, context)
