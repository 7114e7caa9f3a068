-- Events the projector parked in the dead-letter queue, by outbox id. A consistency token
-- covers every earlier committed event (shopcore/read/consistency.py); a parked event will not
-- be projected until someone replays it, so it must not hold back the tokens of other writes.
-- The projector records it here before it parks it. A replayed event that is then applied also
-- appears in processed_events; readers count the union.
CREATE TABLE parked_events (
    outbox_id bigint      PRIMARY KEY,
    parked_at timestamptz NOT NULL DEFAULT now(),
    reason    text        NOT NULL
);

GRANT SELECT, INSERT ON parked_events TO shop_projector;
GRANT SELECT ON parked_events TO shop_analytics;
