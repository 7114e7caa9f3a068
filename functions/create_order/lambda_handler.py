"""create_order on AWS Lambda (POST /api/orders).

API Gateway HTTP API events (payload 2.0) go into the same functions-framework app as main.py,
so routing, validation and errors are exactly main.py's.
"""

from typing import Any

from shopcore.platform import aws_lambda

_serve = aws_lambda.http_handler("create_order", __file__)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _serve(event, context)
