-- Request ids (AIP-155) belong to the principal that sent them and to the request they came
-- with: the same id from another principal is another request; the same id with another
-- payload is refused. Rows from before have no principal and match no retry.
ALTER TABLE idempotency_keys ADD COLUMN principal TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys ADD COLUMN request_hash TEXT COLLATE "C" NOT NULL DEFAULT '';  -- SHA-256 (hex) of the request
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (collection, principal, request_id);
