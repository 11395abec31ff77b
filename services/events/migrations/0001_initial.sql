-- Events: the resource as protobuf in `data`, filterable fields in columns, list fields
-- (hosts, co_hosts, partners, topics) as rows of events_values.
CREATE TABLE events (
  seq INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  data BLOB NOT NULL,
  etag TEXT NOT NULL,
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL,
  delete_time INTEGER,
  kind INTEGER NOT NULL DEFAULT 0,
  level INTEGER NOT NULL DEFAULT 0,
  status INTEGER NOT NULL DEFAULT 0,
  start_date TEXT NOT NULL DEFAULT '',
  end_date TEXT NOT NULL DEFAULT '',
  location_country_code TEXT NOT NULL DEFAULT '',
  location_city TEXT NOT NULL DEFAULT '',
  title TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_by_kind ON events (kind, seq);
CREATE INDEX events_by_start_date ON events (start_date, seq);
CREATE INDEX events_by_end_date ON events (end_date, seq);
CREATE INDEX events_by_country ON events (location_country_code, seq);
CREATE INDEX events_by_title ON events (title, seq);
CREATE INDEX events_by_create_time ON events (create_time, seq);

CREATE TABLE events_values (
  seq INTEGER NOT NULL REFERENCES events (seq),
  field TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (seq, field, value)
) WITHOUT ROWID;
CREATE INDEX events_values_lookup ON events_values (field, value, seq);

CREATE VIRTUAL TABLE events_fts USING fts5(body, tokenize = 'unicode61 remove_diacritics 2');

CREATE TABLE idempotency_keys (
  collection TEXT NOT NULL,
  request_id TEXT NOT NULL,
  response BLOB NOT NULL,
  create_time INTEGER NOT NULL,
  PRIMARY KEY (collection, request_id)
) WITHOUT ROWID;
