-- Least privilege: one login role per part of the system. Roles are cluster-wide, so they are
-- created if missing (a concurrent run may create them first); grants are per database.
-- A later migration that adds a table must grant on it too.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['shop_command', 'shop_relay', 'shop_projector', 'shop_analytics']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I LOGIN', role_name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
    EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format(
        'GRANT CONNECT ON DATABASE %I TO shop_command, shop_relay, shop_analytics',
        current_database()
    );
END
$$;

GRANT USAGE ON SCHEMA public TO shop_command, shop_relay, shop_analytics;

-- create_product, create_order: insert products, orders, items and events; change stock only.
GRANT SELECT, INSERT ON products, orders, order_items, outbox TO shop_command;
GRANT UPDATE (stock) ON products TO shop_command;
GRANT USAGE ON SEQUENCE products_id_seq, orders_id_seq, order_items_id_seq, outbox_id_seq
    TO shop_command;

-- outbox_relay: read the outbox and mark rows published; nothing else.
GRANT SELECT, UPDATE (published_at) ON outbox TO shop_relay;

-- analytics (sync-status): read the outbox.
GRANT SELECT ON outbox TO shop_analytics;
