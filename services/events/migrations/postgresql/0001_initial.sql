-- PostgreSQL version of ../0001_initial.sql: the same tables and indexes; text in the "C"
-- collation (byte order, as SQLite's), full-text search as a tsvector of the accent-free text.
CREATE EXTENSION IF NOT EXISTS unaccent;

CREATE TABLE events (
  seq BIGSERIAL PRIMARY KEY,
  name TEXT COLLATE "C" NOT NULL UNIQUE,
  data BYTEA NOT NULL,
  etag TEXT NOT NULL,
  create_time BIGINT NOT NULL,
  update_time BIGINT NOT NULL,
  delete_time BIGINT,
  kind INTEGER NOT NULL DEFAULT 0,
  level INTEGER NOT NULL DEFAULT 0,
  status INTEGER NOT NULL DEFAULT 0,
  start_date TEXT COLLATE "C" NOT NULL DEFAULT '',
  end_date TEXT COLLATE "C" NOT NULL DEFAULT '',
  location_country_code TEXT COLLATE "C" NOT NULL DEFAULT '',
  location_city TEXT COLLATE "C" NOT NULL DEFAULT '',
  title TEXT COLLATE "C" NOT NULL DEFAULT ''
);
CREATE INDEX events_by_kind ON events (kind, seq);
CREATE INDEX events_by_start_date ON events (start_date, seq);
CREATE INDEX events_by_end_date ON events (end_date, seq);
CREATE INDEX events_by_country ON events (location_country_code, seq);
CREATE INDEX events_by_title ON events (title, seq);
CREATE INDEX events_by_create_time ON events (create_time, seq);

CREATE TABLE events_values (
  seq BIGINT NOT NULL REFERENCES events (seq),
  field TEXT COLLATE "C" NOT NULL,
  value TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (seq, field, value)
);
CREATE INDEX events_values_lookup ON events_values (field, value, seq);

CREATE TABLE events_fts (
  seq BIGINT PRIMARY KEY REFERENCES events (seq),
  body TSVECTOR NOT NULL
);
CREATE INDEX events_fts_body ON events_fts USING GIN (body);

CREATE TABLE idempotency_keys (
  collection TEXT COLLATE "C" NOT NULL,
  request_id TEXT COLLATE "C" NOT NULL,
  response BYTEA NOT NULL,
  create_time BIGINT NOT NULL,
  PRIMARY KEY (collection, request_id)
);
