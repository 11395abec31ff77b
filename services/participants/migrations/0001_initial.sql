-- Participants and their registrations, in one database so that registration rules
-- (participant exists, one live registration per event, capacity) hold in one transaction.
CREATE TABLE participants (
  seq INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  data BLOB NOT NULL,
  etag TEXT NOT NULL,
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL,
  delete_time INTEGER,
  organisation TEXT NOT NULL DEFAULT '',
  country_code TEXT NOT NULL DEFAULT '',
  family_name TEXT NOT NULL DEFAULT '',
  given_name TEXT NOT NULL DEFAULT '',
  gender INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX participants_by_organisation ON participants (organisation, seq);
CREATE INDEX participants_by_family_name ON participants (family_name, seq);
CREATE INDEX participants_by_create_time ON participants (create_time, seq);

CREATE VIRTUAL TABLE participants_fts USING fts5(body, tokenize = 'unicode61 remove_diacritics 2');

CREATE TABLE registrations (
  seq INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  data BLOB NOT NULL,
  etag TEXT NOT NULL,
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL,
  delete_time INTEGER,
  event TEXT NOT NULL,
  participant TEXT NOT NULL,
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
  collection TEXT NOT NULL,
  request_id TEXT NOT NULL,
  response BLOB NOT NULL,
  create_time INTEGER NOT NULL,
  PRIMARY KEY (collection, request_id)
) WITHOUT ROWID;
