-- pgbench script: what create_order does to the write database, in one transaction.
\set pid random(1, 1000)
\set cid random(1, 100000)
BEGIN;
SELECT id, name, category, stock FROM products WHERE id = :pid FOR UPDATE;
UPDATE products SET stock = stock - 1 WHERE id = :pid;
INSERT INTO orders (customer_id, total, status, created_at)
    VALUES (:cid, 10, 'created', now()) RETURNING id AS oid \gset
INSERT INTO order_items (order_id, product_id, quantity, price) VALUES (:oid, :pid, 1, 10);
INSERT INTO outbox (topic, payload, created_at)
    VALUES ('order-events', '{"eventId": "00000000-0000-0000-0000-000000000000"}', now());
COMMIT;
