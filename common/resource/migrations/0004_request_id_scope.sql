-- Request ids (AIP-155) belong to the principal that sent them and to the request they came
-- with: the same id from another principal is another request; the same id with another
-- payload is refused. Rows from before have no principal and match no retry.
CREATE TABLE idempotency_keys_scoped (
  collection TEXT NOT NULL,
  principal TEXT NOT NULL,
  request_id TEXT NOT NULL,
  request_hash TEXT NOT NULL,  -- SHA-256 (hex) of the request, request_id left out
  response BLOB NOT NULL,
  create_time INTEGER NOT NULL,
  PRIMARY KEY (collection, principal, request_id)
) WITHOUT ROWID;
INSERT INTO idempotency_keys_scoped (collection, principal, request_id, request_hash, response, create_time)
  SELECT collection, '', request_id, '', response, create_time FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_scoped RENAME TO idempotency_keys;
