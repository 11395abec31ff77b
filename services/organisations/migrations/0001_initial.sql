-- Organisations: the resource as protobuf in `data`, filterable fields in columns.
CREATE TABLE organisations (
  seq INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  data BLOB NOT NULL,
  etag TEXT NOT NULL,
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL,
  delete_time INTEGER,
  kind INTEGER NOT NULL DEFAULT 0,
  country_code TEXT NOT NULL DEFAULT '',
  process_role INTEGER NOT NULL DEFAULT 0,
  display_name TEXT NOT NULL DEFAULT '',
  acronym TEXT NOT NULL DEFAULT ''
);
CREATE INDEX organisations_by_kind ON organisations (kind, seq);
CREATE INDEX organisations_by_country ON organisations (country_code, seq);
CREATE INDEX organisations_by_display_name ON organisations (display_name, seq);
CREATE INDEX organisations_by_create_time ON organisations (create_time, seq);

CREATE VIRTUAL TABLE organisations_fts USING fts5(body, tokenize = 'unicode61 remove_diacritics 2');

CREATE TABLE idempotency_keys (
  collection TEXT NOT NULL,
  request_id TEXT NOT NULL,
  response BLOB NOT NULL,
  create_time INTEGER NOT NULL,
  PRIMARY KEY (collection, request_id)
) WITHOUT ROWID;
