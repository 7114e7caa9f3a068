#!/usr/bin/env bash
# Start Postgres and RabbitMQ on this machine if they are not answering, then wait for them.
# Used by `make run`, `make test` and CI. Elsewhere (docker compose, managed services) it
# only checks and says what is missing.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
rabbit_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "Postgres is down; starting it"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi
if ! rabbit_up; then
  if command -v rabbitmq-server >/dev/null; then
    echo "RabbitMQ is down; starting it"
    rabbitmq-server -detached || true
  fi
fi

for _ in $(seq 1 120); do
  if pg_up && rabbit_up; then
    # RabbitMQ accepts TCP before it accepts AMQP logins: wait for the node to be booted
    if ! command -v rabbitmqctl >/dev/null || rabbitmqctl -q await_startup >/dev/null 2>&1; then
      exit 0
    fi
  fi
  sleep 1
done
pg_up || echo "error: Postgres is not answering on 127.0.0.1:5432" >&2
rabbit_up || echo "error: RabbitMQ is not answering on 127.0.0.1:5672" >&2
exit 1
