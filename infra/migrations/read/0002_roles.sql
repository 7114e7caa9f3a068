-- Least privilege: see write/0002_roles.sql. Only the projector writes here; analytics reads.
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
        'GRANT CONNECT ON DATABASE %I TO shop_projector, shop_analytics', current_database()
    );
END
$$;

GRANT USAGE ON SCHEMA public TO shop_projector, shop_analytics;

GRANT SELECT, INSERT, UPDATE ON product_catalog, product_sales_view, category_metrics_view,
    customer_ltv_view, hourly_sales_view, processed_events TO shop_projector;

GRANT SELECT ON product_catalog, product_sales_view, category_metrics_view, customer_ltv_view,
    hourly_sales_view, processed_events TO shop_analytics;
