"""`python -m infra.local.edge MODULE:FACTORY --host H --port P --workers N --threads T`"""

from __future__ import annotations

import argparse

from infra.local.edge.workers import serve


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.edge", description=__doc__)
    parser.add_argument("factory", help="module:function that returns the WSGI app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1, help="processes")
    parser.add_argument("--threads", type=int, default=1, help="serving threads per process")
    args = parser.parse_args()
    return serve(
        args.factory, host=args.host, port=args.port, workers=args.workers, threads=args.threads
    )


if __name__ == "__main__":
    raise SystemExit(main())
