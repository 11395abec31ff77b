-- The audit log every service keeps in its own database: one row per committed write,
-- written in the same transaction. Append-only: updates and deletes are refused.
CREATE TABLE audit_log (
  seq INTEGER PRIMARY KEY,
  time INTEGER NOT NULL,
  principal TEXT NOT NULL,
  role TEXT NOT NULL,
  method TEXT NOT NULL,
  resource TEXT NOT NULL,
  old_etag TEXT NOT NULL,
  new_etag TEXT NOT NULL,
  request_id TEXT NOT NULL
);
CREATE INDEX audit_log_by_resource ON audit_log (resource, seq);
CREATE INDEX audit_log_by_principal ON audit_log (principal, seq);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
