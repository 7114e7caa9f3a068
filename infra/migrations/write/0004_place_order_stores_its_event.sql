-- place_order stores the OrderCreated event it is given, whole, under the topic it is given:
-- shopcore/events builds every event, in one place. Before calling it, shopcore/write/
-- commands.py reserves the order's id and reads each line's product name and category (what
-- the event needs from the database), so this function takes the id too. What it still does
-- is what only the database can do atomically: lock, check stock, decrement, and write the
-- order, its items and its event (one statement, BENCHMARKS.md).
--
-- Errors (SQLSTATE, with a JSON DETAIL), as in 0003:
--   SH400 unknown products   {"productIds": [...]}
--   SH409 not enough stock   {"productId", "requested", "available"}
DROP FUNCTION place_order(bigint, bigint[], integer[], numeric[], numeric, timestamptz, jsonb);

CREATE FUNCTION place_order(
    new_order_id bigint,  -- nextval('orders_id_seq'), reserved by the caller
    customer bigint,
    product_ids bigint[],  -- one entry per order line, with its quantity and unit price
    quantities integer[],
    prices numeric[],
    order_total numeric,
    at timestamptz,
    event_topic text,
    event jsonb  -- OrderCreated, complete
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    unknown jsonb;
    short record;
BEGIN
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

    INSERT INTO outbox (topic, payload, created_at) VALUES (event_topic, event, at);
END;
$$;
