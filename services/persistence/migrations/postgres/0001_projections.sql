-- The projection tables of services.persistence.postgres.PostgresStore.
--
-- The same tables, columns (in the same order) and keys as SqliteStore's
-- schema version 1, so that a dump of either store compares equal. Integers
-- are BIGINT wherever the engine bounds them to 64 bits (every command and
-- event field is an int64 on the wire, and core.numbers.MAX_AMOUNT keeps
-- balances, holds, fills and an order's filled notional under 2**62).
-- Candle volumes are sums over an unbounded number of trades, so they are
-- NUMERIC(39,0), where SQLite relies on its arbitrary integer arithmetic.
-- Text that is part of a key or an ORDER BY is COLLATE "C": byte order, as in
-- SQLite, whatever the database's default collation.

CREATE TABLE orders (
    id BIGINT PRIMARY KEY,
    account BIGINT NOT NULL,
    symbol BIGINT NOT NULL,
    side TEXT NOT NULL,
    type TEXT NOT NULL,
    time_in_force TEXT NOT NULL,
    price BIGINT,
    quantity BIGINT,
    quote_quantity BIGINT,
    stop_price BIGINT,
    expire_time BIGINT,
    post_only BIGINT NOT NULL,
    stp TEXT NOT NULL,
    client_order_id TEXT COLLATE "C",
    status TEXT NOT NULL,
    leaves BIGINT NOT NULL,
    filled_quantity BIGINT NOT NULL,
    filled_notional BIGINT NOT NULL,
    fee_total BIGINT NOT NULL,
    fee_asset BIGINT,
    hold BIGINT NOT NULL,
    hold_asset BIGINT,
    reason TEXT,
    created_seq BIGINT NOT NULL,
    created_time BIGINT NOT NULL,
    updated_seq BIGINT NOT NULL,
    updated_time BIGINT NOT NULL,
    triggered_seq BIGINT
) WITH (fillfactor = 90);  -- room for HOT updates: an order row is rewritten by each of its events

CREATE INDEX orders_by_account ON orders (account, id);
CREATE UNIQUE INDEX orders_by_client_id ON orders (account, client_order_id) WHERE client_order_id IS NOT NULL;
CREATE INDEX orders_open ON orders (account, id)
    WHERE status IN ('new', 'partially_filled', 'pending_trigger', 'triggered');
-- The gateway's expiry clock reads the open GTD orders' expiry times at start-up.
CREATE INDEX orders_open_gtd ON orders (expire_time)
    WHERE time_in_force = 'gtd' AND status IN ('new', 'partially_filled', 'pending_trigger', 'triggered');

CREATE TABLE fills (
    trade_seq BIGINT NOT NULL,
    trade_index BIGINT NOT NULL,
    liquidity TEXT COLLATE "C" NOT NULL,
    order_id BIGINT NOT NULL,
    account BIGINT NOT NULL,
    symbol BIGINT NOT NULL,
    side TEXT NOT NULL,
    price BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    fee BIGINT NOT NULL,
    fee_asset BIGINT NOT NULL,
    time BIGINT NOT NULL,
    PRIMARY KEY (trade_seq, trade_index, liquidity)
);

CREATE INDEX fills_by_account ON fills (account, trade_seq, trade_index);
-- An order's fills, oldest first (the order detail of the API).
CREATE INDEX fills_by_order ON fills (account, order_id, trade_seq, trade_index);

CREATE TABLE trades (
    seq BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    symbol BIGINT NOT NULL,
    price BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    aggressor_side TEXT NOT NULL,
    time BIGINT NOT NULL,
    PRIMARY KEY (seq, idx)
);

CREATE INDEX trades_by_symbol ON trades (symbol, seq, idx);

-- Postings: (seq, idx) is one entry, whose debits equal its credits per asset
-- (proved at commit by the constraint trigger of migration 0002).
CREATE TABLE ledger (
    seq BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    leg BIGINT NOT NULL,
    kind TEXT NOT NULL,
    account BIGINT NOT NULL,
    asset BIGINT NOT NULL,
    debit BIGINT NOT NULL,
    credit BIGINT NOT NULL,
    time BIGINT NOT NULL,
    PRIMARY KEY (seq, idx, leg),
    CONSTRAINT ledger_one_sided_posting CHECK (debit >= 0 AND credit >= 0 AND (debit = 0 OR credit = 0))
);

CREATE TABLE balances (
    account BIGINT NOT NULL,
    asset BIGINT NOT NULL,
    total BIGINT NOT NULL,
    held BIGINT NOT NULL,
    updated_seq BIGINT NOT NULL,
    PRIMARY KEY (account, asset)
) WITH (fillfactor = 80);  -- every batch rewrites the balances it moves: keep those updates HOT

CREATE TABLE candles (
    symbol BIGINT NOT NULL,
    interval TEXT COLLATE "C" NOT NULL,
    start BIGINT NOT NULL,
    open BIGINT NOT NULL,
    high BIGINT NOT NULL,
    low BIGINT NOT NULL,
    close BIGINT NOT NULL,
    volume NUMERIC(39, 0) NOT NULL,
    quote_volume NUMERIC(39, 0) NOT NULL,
    trade_count BIGINT NOT NULL,
    PRIMARY KEY (symbol, interval, start)
);

CREATE TABLE projection_position (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    seq BIGINT NOT NULL,
    time BIGINT NOT NULL
);

INSERT INTO projection_position (id, seq, time) VALUES (0, 0, 0);
