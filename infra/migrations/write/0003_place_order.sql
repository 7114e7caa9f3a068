-- create_order's transaction as one function call: one round trip per order instead of two
-- pipelined ones, and a fraction of the client CPU (BENCHMARKS.md). shopcore/commands.py
-- validates the order, merges and totals its lines and builds the event; this function does
-- what only the database can do atomically: lock, check stock, decrement, and write the
-- order, its items and its event.
--
-- Errors (SQLSTATE, with a JSON DETAIL):
--   SH400 unknown products   {"productIds": [...]}
--   SH409 not enough stock   {"productId", "requested", "available"}
CREATE FUNCTION place_order(
    customer bigint,
    product_ids bigint[],  -- one entry per order line, with its quantity and unit price
    quantities integer[],
    prices numeric[],
    order_total numeric,
    at timestamptz,
    event jsonb  -- OrderCreated without orderId and items, which are added here
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    unknown jsonb;
    short record;
    new_order_id bigint;
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

    INSERT INTO orders (customer_id, total, status, created_at)
    VALUES (customer, order_total, 'created', at)
    RETURNING id INTO new_order_id;

    INSERT INTO order_items (order_id, product_id, quantity, price)
    SELECT new_order_id, line.product_id, line.quantity, line.price
    FROM unnest(product_ids, quantities, prices) AS line(product_id, quantity, price);

    -- The event carries each item's product name and category as they are now.
    INSERT INTO outbox (topic, payload, created_at)
    SELECT
        'order-events',
        event || jsonb_build_object(
            'orderId', new_order_id,
            'items', jsonb_agg(
                jsonb_build_object(
                    'productId', line.product_id,
                    'quantity', line.quantity,
                    'price', line.price,
                    'name', products.name,
                    'category', products.category
                )
                ORDER BY line.position
            )
        ),
        at
    FROM unnest(product_ids, quantities, prices) WITH ORDINALITY
        AS line(product_id, quantity, price, position)
    JOIN products ON products.id = line.product_id;

    RETURN new_order_id;
END;
$$;
