-- Safe retries (CONTRACT.md, "Safe retries: Idempotency-Key") and consistency tokens.
--
-- A command sent with an Idempotency-Key claims the key first, in the same transaction as its
-- rows and its outbox event, and stores the answer it gives: the new row's id (reserved by the
-- caller) and, once the event has its outbox id, the consistency token naming it. So a key is
-- remembered exactly when the write committed, and a request that was refused (any 4xx rolls
-- the transaction back) leaves nothing behind. The outbox id is taken only once the write is
-- sure to happen: refused and replayed requests leave no gaps in the outbox's ids.
--
-- A concurrent request with the same key blocks on the key's uncommitted index entry until the
-- first transaction ends (Postgres' own unique-index wait): then it replays the stored answer
-- (the first committed) or claims the key itself (the first rolled back). It never writes a
-- second time. The wait is bounded by `wait` (lock_timeout, SQLSTATE 55P03: the API answers
-- 409 with Retry-After).

-- Consistency tokens cover every earlier committed event (shopcore/read/consistency.py), so a
-- reader must know when no transaction can still commit an outbox id below a given one. Each
-- write inserts its event in a subtransaction of its own, after taking the event's outbox id:
-- the row's xmin is then a transaction id assigned after that nextval, so higher than the
-- transaction id of every transaction that took a lower outbox id (each writes a row, and so
-- has its id, before it takes an outbox id). Once the oldest running transaction is past a
-- row's xmin, every lower outbox id is committed and visible, or will never appear.

CREATE TABLE idempotency_keys (
    -- '' when the command API has no API keys; otherwise a digest of the caller's API key
    scope       text        NOT NULL,
    key         text        NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    route       text        NOT NULL,  -- 'POST /api/orders'
    fingerprint bytea       NOT NULL,  -- SHA-256 of the body as the API read it
    status      smallint    NOT NULL,
    answer      jsonb       NOT NULL,  -- the JSON body the first request was answered
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
-- What the scheduled cleanup (shopcore/pipeline/housekeeping.py) walks.
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);

-- Claim a key for this request. No row: claimed, go on and write. One row: the key is held by
-- an earlier request that committed (route, fingerprint and answer to compare and replay).
-- An expired key counts as absent even before the cleanup has removed it.
CREATE FUNCTION claim_idempotency_key(
    key_scope text,
    key_value text,
    key_route text,
    key_fingerprint bytea,
    answer_status smallint,
    answer_body jsonb,
    ttl interval,
    wait interval
) RETURNS TABLE (route text, fingerprint bytea, status smallint, answer jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    previous_timeout text := current_setting('lock_timeout');
    claimed boolean;
BEGIN
    PERFORM set_config('lock_timeout', (extract(epoch FROM wait) * 1000)::bigint::text, true);
    LOOP
        claimed := false;
        INSERT INTO idempotency_keys AS k
            (scope, key, route, fingerprint, status, answer, created_at, expires_at)
        VALUES
            (key_scope, key_value, key_route, key_fingerprint, answer_status, answer_body,
             now(), now() + ttl)
        ON CONFLICT (scope, key) DO UPDATE SET
            route = EXCLUDED.route,
            fingerprint = EXCLUDED.fingerprint,
            status = EXCLUDED.status,
            answer = EXCLUDED.answer,
            created_at = EXCLUDED.created_at,
            expires_at = EXCLUDED.expires_at
        WHERE k.expires_at <= now()
        RETURNING true INTO claimed;
        IF claimed THEN
            PERFORM set_config('lock_timeout', previous_timeout, true);
            RETURN;
        END IF;
        -- Held: each statement of this function sees what committed before it began, so the
        -- holder's row is visible now.
        RETURN QUERY
            SELECT k.route, k.fingerprint, k.status, k.answer
            FROM idempotency_keys AS k
            WHERE k.scope = key_scope AND k.key = key_value;
        IF FOUND THEN
            PERFORM set_config('lock_timeout', previous_timeout, true);
            RETURN;
        END IF;
        -- removed between the two statements (expired and cleaned up): claim it again
    END LOOP;
END;
$$;

-- Both write statements end here: the event under a new outbox id, and the token naming it in
-- the claimed key's answer (no key: none). Returns the outbox id.
CREATE FUNCTION append_event(
    event_topic text, event jsonb, at timestamptz, token_prefix text,
    key_scope text, key_value text
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    new_outbox_id bigint := nextval('outbox_id_seq');
BEGIN
    BEGIN  -- the subtransaction that gives the row its xmin (see the top of this file)
        INSERT INTO outbox (id, topic, payload, created_at)
        VALUES (new_outbox_id, event_topic, event, at);
    EXCEPTION WHEN OTHERS THEN
        RAISE;
    END;
    IF key_value IS NOT NULL THEN
        UPDATE idempotency_keys AS k
        SET answer = k.answer || jsonb_build_object('consistencyToken', token_prefix || new_outbox_id)
        WHERE k.scope = key_scope AND k.key = key_value;
    END IF;
    RETURN new_outbox_id;
END;
$$;

-- create_product's one statement: claim the key (when one is given), then the product and its
-- event. Returns one row: the event's outbox id when it wrote, or (outbox_id NULL) the holder of
-- the key instead of writing.
CREATE FUNCTION store_product(
    new_product_id bigint,
    product_name text,
    product_category text,
    product_price numeric,
    product_stock integer,
    at timestamptz,
    event_topic text,
    event jsonb,
    token_prefix text,  -- a consistency token is this followed by the outbox id
    key_scope text,  -- the key's columns: all NULL without an Idempotency-Key
    key_value text,
    key_route text,
    key_fingerprint bytea,
    answer_status smallint,
    answer_body jsonb,  -- the answer without its consistency token
    ttl interval,
    wait interval
) RETURNS TABLE (outbox_id bigint, route text, fingerprint bytea, status smallint, answer jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    new_outbox_id bigint;
BEGIN
    IF key_value IS NOT NULL THEN
        RETURN QUERY SELECT NULL::bigint, held.* FROM claim_idempotency_key(
            key_scope, key_value, key_route, key_fingerprint, answer_status, answer_body,
            ttl, wait) AS held;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    INSERT INTO products (id, name, category, price, stock, created_at)
    VALUES (new_product_id, product_name, product_category, product_price, product_stock, at);
    new_outbox_id := append_event(event_topic, event, at, token_prefix, key_scope, key_value);
    RETURN QUERY SELECT new_outbox_id, NULL::text, NULL::bytea, NULL::smallint, NULL::jsonb;
END;
$$;

-- place_order as in 0004, returning the event's outbox id, with the optional key: the key is
-- claimed before any product is locked, so a retry of an order that took the last unit is
-- replayed, not refused for want of stock. Errors as in 0004 (SH400, SH409).
DROP FUNCTION place_order(
    bigint, bigint, bigint[], integer[], numeric[], numeric, timestamptz, text, jsonb
);

CREATE FUNCTION place_order(
    new_order_id bigint,
    customer bigint,
    product_ids bigint[],
    quantities integer[],
    prices numeric[],
    order_total numeric,
    at timestamptz,
    event_topic text,
    event jsonb,
    token_prefix text,
    key_scope text,
    key_value text,
    key_route text,
    key_fingerprint bytea,
    answer_status smallint,
    answer_body jsonb,
    ttl interval,
    wait interval
) RETURNS TABLE (outbox_id bigint, route text, fingerprint bytea, status smallint, answer jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    unknown jsonb;
    short record;
    new_outbox_id bigint;
BEGIN
    IF key_value IS NOT NULL THEN
        RETURN QUERY SELECT NULL::bigint, held.* FROM claim_idempotency_key(
            key_scope, key_value, key_route, key_fingerprint, answer_status, answer_body,
            ttl, wait) AS held;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;

    -- Lock the products in id order: concurrent orders over the same products queue up
    -- instead of deadlocking.
    PERFORM 1 FROM products WHERE id = ANY(product_ids) ORDER BY id FOR UPDATE;

    SELECT jsonb_agg(wanted.id ORDER BY wanted.id) INTO unknown
    FROM (SELECT DISTINCT unnest(product_ids) AS id) AS wanted
    WHERE NOT EXISTS (SELECT 1 FROM products WHERE products.id = wanted.id);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown products' USING
            ERRCODE = 'SH400', DETAIL = jsonb_build_object('productIds', unknown)::text;
    END IF;

    -- All lines of one product count together against its stock.
    SELECT wanted.product_id, wanted.quantity, products.stock INTO short
    FROM (
        SELECT line.product_id, sum(line.quantity) AS quantity
        FROM unnest(product_ids, quantities) AS line(product_id, quantity)
        GROUP BY line.product_id
    ) AS wanted
    JOIN products ON products.id = wanted.product_id
    WHERE products.stock < wanted.quantity
    ORDER BY wanted.product_id
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insufficient stock' USING
            ERRCODE = 'SH409',
            DETAIL = jsonb_build_object(
                'productId', short.product_id,
                'requested', short.quantity,
                'available', short.stock
            )::text;
    END IF;

    -- The table's CHECK (stock >= 0) makes the decrement itself refuse to oversell.
    UPDATE products SET stock = products.stock - wanted.quantity
    FROM (
        SELECT line.product_id, sum(line.quantity) AS quantity
        FROM unnest(product_ids, quantities) AS line(product_id, quantity)
        GROUP BY line.product_id
    ) AS wanted
    WHERE products.id = wanted.product_id;

    INSERT INTO orders (id, customer_id, total, status, created_at)
    VALUES (new_order_id, customer, order_total, 'created', at);

    INSERT INTO order_items (order_id, product_id, quantity, price)
    SELECT new_order_id, line.product_id, line.quantity, line.price
    FROM unnest(product_ids, quantities, prices) AS line(product_id, quantity, price);

    new_outbox_id := append_event(event_topic, event, at, token_prefix, key_scope, key_value);
    RETURN QUERY SELECT new_outbox_id, NULL::text, NULL::bytea, NULL::smallint, NULL::jsonb;
END;
$$;

-- The commands claim keys (and take over expired ones); the relay's scheduled housekeeping
-- removes expired ones. Roles as in 0002 (they exist whether or not the functions use them).
GRANT SELECT, INSERT, UPDATE ON idempotency_keys TO shop_command;
-- (UPDATE: the cleanup's SELECT ... FOR UPDATE SKIP LOCKED needs it; it updates nothing)
GRANT SELECT, UPDATE, DELETE ON idempotency_keys TO shop_relay;
