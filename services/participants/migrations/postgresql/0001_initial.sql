-- PostgreSQL version of ../0001_initial.sql: the same tables and indexes; text in the "C"
-- collation (byte order, as SQLite's), full-text search as a tsvector of the accent-free text.
-- One live registration per (event, participant) is the same partial unique index; capacity
-- is checked under a per-event advisory lock (participant_rules.cc), so replicas agree.
CREATE EXTENSION IF NOT EXISTS unaccent;

CREATE TABLE participants (
  seq BIGSERIAL PRIMARY KEY,
  name TEXT COLLATE "C" NOT NULL UNIQUE,
  data BYTEA NOT NULL,
  etag TEXT NOT NULL,
  create_time BIGINT NOT NULL,
  update_time BIGINT NOT NULL,
  delete_time BIGINT,
  organisation TEXT COLLATE "C" NOT NULL DEFAULT '',
  country_code TEXT COLLATE "C" NOT NULL DEFAULT '',
  family_name TEXT COLLATE "C" NOT NULL DEFAULT '',
  given_name TEXT COLLATE "C" NOT NULL DEFAULT '',
  gender INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX participants_by_organisation ON participants (organisation, seq);
CREATE INDEX participants_by_family_name ON participants (family_name, seq);
CREATE INDEX participants_by_create_time ON participants (create_time, seq);

CREATE TABLE participants_fts (
  seq BIGINT PRIMARY KEY REFERENCES participants (seq),
  body TSVECTOR NOT NULL
);
CREATE INDEX participants_fts_body ON participants_fts USING GIN (body);

CREATE TABLE registrations (
  seq BIGSERIAL PRIMARY KEY,
  name TEXT COLLATE "C" NOT NULL UNIQUE,
  data BYTEA NOT NULL,
  etag TEXT NOT NULL,
  create_time BIGINT NOT NULL,
  update_time BIGINT NOT NULL,
  delete_time BIGINT,
  event TEXT COLLATE "C" NOT NULL,
  participant TEXT COLLATE "C" NOT NULL,
  role INTEGER NOT NULL DEFAULT 0,
  status INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX registrations_by_event ON registrations (event, status, seq);
CREATE INDEX registrations_by_participant ON registrations (participant, seq);
CREATE INDEX registrations_by_create_time ON registrations (create_time, seq);
-- One live registration per (event, participant): 5 = REGISTRATION_STATUS_CANCELLED.
CREATE UNIQUE INDEX registrations_one_live ON registrations (event, participant)
  WHERE status <> 5 AND delete_time IS NULL;

CREATE TABLE idempotency_keys (
  collection TEXT COLLATE "C" NOT NULL,
  request_id TEXT COLLATE "C" NOT NULL,
  response BYTEA NOT NULL,
  create_time BIGINT NOT NULL,
  PRIMARY KEY (collection, request_id)
);
