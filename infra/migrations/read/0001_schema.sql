-- Read side: read models kept up to date by the projector. Every update is commutative.

-- Products as announced by ProductCreated, so a product with no sales answers with zeros.
CREATE TABLE product_catalog (
    product_id bigint PRIMARY KEY,
    name       text          NOT NULL,
    category   text          NOT NULL,
    price      numeric(14,2) NOT NULL,
    created_at timestamptz   NOT NULL
);
CREATE INDEX product_catalog_category_idx ON product_catalog (category);

CREATE TABLE product_sales_view (
    product_id          bigint  PRIMARY KEY,
    total_quantity_sold bigint  NOT NULL DEFAULT 0,
    total_revenue       numeric NOT NULL DEFAULT 0,
    order_count         bigint  NOT NULL DEFAULT 0
);

CREATE TABLE category_metrics_view (
    category_name text    PRIMARY KEY,
    total_revenue numeric NOT NULL DEFAULT 0,
    total_orders  bigint  NOT NULL DEFAULT 0
);

CREATE TABLE customer_ltv_view (
    customer_id     bigint      PRIMARY KEY,
    total_spent     numeric     NOT NULL DEFAULT 0,
    order_count     bigint      NOT NULL DEFAULT 0,
    last_order_date timestamptz
);

CREATE TABLE hourly_sales_view (
    hour_timestamp timestamptz PRIMARY KEY,
    total_orders   bigint      NOT NULL DEFAULT 0,
    total_revenue  numeric     NOT NULL DEFAULT 0
);

-- One row per applied event: the idempotency guard. outbox_id (the CloudEvents `sequence`
-- the relay sends) lets sync-status compare against the write side's outbox.
CREATE TABLE processed_events (
    event_id     uuid        PRIMARY KEY,
    event_type   text        NOT NULL,
    outbox_id    bigint,
    occurred_at  timestamptz NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_events_outbox_id_idx ON processed_events (outbox_id);
CREATE INDEX processed_events_processed_at_idx ON processed_events (processed_at);
