"""Between the databases: the outbox, the relay and its publishing, queue messages, the
projector."""
