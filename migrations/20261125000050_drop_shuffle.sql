-- Verifiable pre-queue draw: each drop's secret seed (revealed after start) and its published
-- commitment, hex SHA-256(seed). Kept here so a rebuild restores the same draw after Redis
-- lost state. Existing drops get a seed from two v4 UUIDs (gen_random_uuid uses the strong
-- random source; 244 random bits), new drops get 32 random bytes from the api.
ALTER TABLE drops ADD COLUMN shuffle_seed BYTEA, ADD COLUMN shuffle_commitment TEXT;
UPDATE drops SET shuffle_seed = decode(
    replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''), 'hex');
UPDATE drops SET shuffle_commitment = encode(sha256(shuffle_seed), 'hex');
ALTER TABLE drops
    ALTER COLUMN shuffle_seed SET NOT NULL,
    ALTER COLUMN shuffle_commitment SET NOT NULL,
    ADD CONSTRAINT drops_shuffle_seed_len CHECK (octet_length(shuffle_seed) = 32),
    ADD CONSTRAINT drops_shuffle_commitment_hex CHECK (shuffle_commitment = encode(sha256(shuffle_seed), 'hex'));
