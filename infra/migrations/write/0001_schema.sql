-- Write side: the shop's source of truth and its transactional outbox.

CREATE TABLE products (
    id         bigserial PRIMARY KEY,
    name       text          NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
    category   text          NOT NULL CHECK (char_length(category) BETWEEN 1 AND 255),
    price      numeric(14,2) NOT NULL CHECK (price >= 0),
    stock      integer       NOT NULL CHECK (stock >= 0),
    created_at timestamptz   NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id          bigserial PRIMARY KEY,
    customer_id bigint        NOT NULL CHECK (customer_id > 0),
    total       numeric(24,2) NOT NULL CHECK (total >= 0),
    status      text          NOT NULL DEFAULT 'created',
    created_at  timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer_id_idx ON orders (customer_id);

CREATE TABLE order_items (
    id         bigserial PRIMARY KEY,
    order_id   bigint        NOT NULL REFERENCES orders (id),
    product_id bigint        NOT NULL REFERENCES products (id),
    quantity   integer       NOT NULL CHECK (quantity >= 1),
    price      numeric(14,2) NOT NULL CHECK (price >= 0)
);
CREATE INDEX order_items_order_id_idx ON order_items (order_id);
CREATE INDEX order_items_product_id_idx ON order_items (product_id);

-- Published rows are kept (published_at set): the outbox is the durable event log that
-- rebuilds the read models.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    topic        text        NOT NULL,
    payload      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
-- What the relay scans: small, because published rows leave it.
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
