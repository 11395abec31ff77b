-- PostgreSQL version of ../0001_initial.sql: the same tables and indexes; text in the "C"
-- collation (byte order, as SQLite's), full-text search as a tsvector of the accent-free text.
CREATE EXTENSION IF NOT EXISTS unaccent;

CREATE TABLE organisations (
  seq BIGSERIAL PRIMARY KEY,
  name TEXT COLLATE "C" NOT NULL UNIQUE,
  data BYTEA NOT NULL,
  etag TEXT NOT NULL,
  create_time BIGINT NOT NULL,
  update_time BIGINT NOT NULL,
  delete_time BIGINT,
  kind INTEGER NOT NULL DEFAULT 0,
  country_code TEXT COLLATE "C" NOT NULL DEFAULT '',
  process_role INTEGER NOT NULL DEFAULT 0,
  display_name TEXT COLLATE "C" NOT NULL DEFAULT '',
  acronym TEXT COLLATE "C" NOT NULL DEFAULT ''
);
CREATE INDEX organisations_by_kind ON organisations (kind, seq);
CREATE INDEX organisations_by_country ON organisations (country_code, seq);
CREATE INDEX organisations_by_display_name ON organisations (display_name, seq);
CREATE INDEX organisations_by_create_time ON organisations (create_time, seq);

CREATE TABLE organisations_fts (
  seq BIGINT PRIMARY KEY REFERENCES organisations (seq),
  body TSVECTOR NOT NULL
);
CREATE INDEX organisations_fts_body ON organisations_fts USING GIN (body);

CREATE TABLE idempotency_keys (
  collection TEXT COLLATE "C" NOT NULL,
  request_id TEXT COLLATE "C" NOT NULL,
  response BYTEA NOT NULL,
  create_time BIGINT NOT NULL,
  PRIMARY KEY (collection, request_id)
);
