"""List and replay the messages parked in the dead-letter queue.

    shop dead-letters list                 # id, original queue, reason, body preview
    shop dead-letters replay ID [ID ...]   # back to their queue, after a fix
    shop dead-letters replay --all
    shop dead-letters discard ID [ID ...]  # drop for good

(`python -m infra.ops.dead_letters` is the same.)

Listing takes nothing away: messages are read without an ack and returned to the queue. A
replayed message is republished (confirmed) to the events exchange with its original queue as
routing key before its dead-letter copy is acked, so a crash in between duplicates it (the
projector dedupes by eventId) but never loses it.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from typing import Any

import pika

from shopcore.pipeline import broker


@dataclass(frozen=True)
class DeadLetter:
    delivery_tag: int
    id: str
    queue: str
    reason: str
    properties: pika.BasicProperties
    body: bytes

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "queue": self.queue,
            "reason": self.reason,
            "body": self.body[:200].decode("utf-8", "replace"),
        }


def _describe(tag: int, props: pika.BasicProperties, body: bytes) -> DeadLetter:
    headers = props.headers or {}
    deaths = headers.get("x-death") or []
    # parked by the projector: our own headers; parked by the broker: its x-death record
    queue = headers.get("x-original-queue") or (deaths[0].get("queue") if deaths else "?")
    reason = headers.get(broker.REASON_HEADER) or (
        f"broker: {deaths[0].get('reason')} after {deaths[0].get('count')} time(s)"
        if deaths
        else "unknown"
    )
    message_id = props.message_id or "sha1:" + hashlib.sha1(body).hexdigest()[:12]
    return DeadLetter(tag, message_id, _text(queue), _text(reason), props, body)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _take_all(channel: Any) -> list[DeadLetter]:
    """Every message in the queue, unacked (they return to it if the channel closes)."""
    taken: list[DeadLetter] = []
    while True:
        method, props, body = channel.basic_get(broker.DEAD_LETTER_QUEUE, auto_ack=False)
        if method is None:
            return taken
        taken.append(_describe(method.delivery_tag, props, body))


def list_dead_letters(url: str | None = None) -> list[DeadLetter]:
    connection = broker.connect(url)
    try:
        return _take_all(connection.channel())
    finally:
        connection.close()  # unacked: everything stays parked


def _settle(url: str | None, chosen: set[str] | None, replay: bool) -> list[DeadLetter]:
    connection = broker.connect(url)
    try:
        channel = connection.channel()
        broker.declare_topology(channel)
        channel.confirm_delivery()
        done = []
        for letter in _take_all(channel):
            if chosen is not None and letter.id not in chosen:
                continue
            if replay:
                headers = {
                    k: v
                    for k, v in (letter.properties.headers or {}).items()
                    if k not in ("x-death", "x-original-queue", broker.REASON_HEADER)
                    and not k.startswith("x-first-death")
                    and not k.startswith("x-last-death")
                }
                letter.properties.headers = headers
                channel.basic_publish(
                    broker.EXCHANGE, letter.queue, letter.body, letter.properties, mandatory=True
                )
            channel.basic_ack(letter.delivery_tag)
            done.append(letter)
        return done
    finally:
        connection.close()  # whatever was not chosen returns to the queue


def replay(ids: set[str] | None, url: str | None = None) -> list[DeadLetter]:
    """Republish the chosen dead letters (None: all) to their original queues."""
    return _settle(url, ids, replay=True)


def discard(ids: set[str], url: str | None = None) -> list[DeadLetter]:
    return _settle(url, ids, replay=False)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list")
    replay_cmd = commands.add_parser("replay")
    replay_cmd.add_argument("ids", nargs="*")
    replay_cmd.add_argument("--all", action="store_true")
    discard_cmd = commands.add_parser("discard")
    discard_cmd.add_argument("ids", nargs="+")
    args = parser.parse_args(argv)

    if args.command == "list":
        letters = list_dead_letters()
        for letter in letters:
            s = letter.summary()
            print(f"{s['id']}  queue={s['queue']}  reason={s['reason']}\n    {s['body']}")
        print(f"{len(letters)} dead-lettered message(s)")
        return 0
    if args.command == "replay":
        if not args.ids and not args.all:
            parser.error("name the ids to replay, or --all")
        done = replay(None if args.all else set(args.ids))
    else:
        done = discard(set(args.ids))
    verb = "replayed" if args.command == "replay" else "discarded"
    for letter in done:
        print(f"{verb} {letter.id} -> {letter.queue}")
    missing = set(getattr(args, "ids", []) or []) - {letter.id for letter in done}
    for message_id in sorted(missing):
        print(f"not found: {message_id}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
