-- depends: 0002_ledger_balanced
--
-- The auth store of services.gateway.auth.postgres_store.PostgresAuthStore:
-- the tables of SqliteAuthStore. users.id is the engine's account id: an
-- identity column allocates it from 1 upward and a sequence never hands a
-- value out twice, so an id is never reused (gaps are possible: a
-- registration that loses a race for its username burns one).
-- Key ids are COLLATE "C" so that "ORDER BY created, key_id" is byte order,
-- as in SQLite.

CREATE TABLE users (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username TEXT NOT NULL,
    username_norm TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    mfa_secret TEXT,
    mfa_enabled BOOLEAN NOT NULL DEFAULT false,
    mfa_last_step BIGINT,
    created BIGINT NOT NULL
);

CREATE TABLE external_identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id),
    created BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);

CREATE TABLE api_keys (
    key_id TEXT COLLATE "C" PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    secret TEXT NOT NULL,
    created BIGINT NOT NULL,
    revoked BIGINT
);

CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TABLE signing_keys (
    kid TEXT COLLATE "C" PRIMARY KEY,
    algorithm TEXT NOT NULL,
    private_key TEXT NOT NULL,
    created BIGINT NOT NULL,
    retired BIGINT
);

-- One key signs at a time, whatever several gateway processes do at once: a
-- second unretired key cannot exist (PostgresAuthStore also serialises
-- rotations, so the second rotation retires the first one's key instead of
-- failing on this index).
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE retired IS NULL;
