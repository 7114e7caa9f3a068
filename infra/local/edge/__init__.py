"""The local emulation's HTTP front: an asynchronous HTTP/1.1 server in front of each port's
WSGI app, doing what a platform's gateway does before a function runs.

A connection costs no serving thread until its request has fully arrived: the event loop
reads headers and body (up to MAX_BODY_BYTES) with a deadline for each, answers slow clients
408, and only then hands the request to one of the port's serving threads. Every answer it
gives itself (400, 404, 405, 408, 413, 414, 415, 431, 505) is the API's JSON error.

    python -m infra.local.edge infra.local.gateway:command_port --port 8080 --workers 1 --threads 16

- `limits.py`: the deadlines and sizes, from the environment;
- `connection.py`: one client connection (parse, deadlines, refusals, answers);
- `wsgi.py`: a complete request as a WSGI call, run in a serving thread;
- `workers.py`: the listening socket, worker processes, respawn and graceful stop.
"""
