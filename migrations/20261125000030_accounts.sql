-- Accounts. Personal data is encrypted by the api (AES-256-GCM, key from config): the
-- *_enc columns hold version byte || 96-bit nonce || ciphertext+tag. The e-mail is found
-- through a keyed HMAC-SHA256 hash, so the table alone does not reveal who has an account.
CREATE TABLE users (
    id             UUID        PRIMARY KEY,
    email_hash     BYTEA       NOT NULL UNIQUE,
    email_enc      BYTEA       NOT NULL,
    password_hash  TEXT        NOT NULL,
    role           TEXT        NOT NULL CHECK (role IN ('shopper', 'manager')),
    name_enc       BYTEA       NOT NULL,
    address_enc    BYTEA       NOT NULL,
    phone_enc      BYTEA       NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Rotating refresh tokens, stored as SHA-256 of the random token. One login starts a
-- family; each refresh marks its token used and adds the next one. Presenting a used
-- token again means it leaked: the whole family is revoked. access_jti/access_exp name
-- the access token issued with the row, so revoking a family revokes those too.
CREATE TABLE refresh_tokens (
    token_hash   BYTEA       PRIMARY KEY,
    family_id    UUID        NOT NULL,
    user_id      UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    access_jti   UUID        NOT NULL UNIQUE,
    access_exp   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    used_at      TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
