-- PostgreSQL version of ../0002_audit_log.sql. Append-only: updates, deletes and truncation
-- are refused by triggers.
CREATE TABLE audit_log (
  seq BIGSERIAL PRIMARY KEY,
  time BIGINT NOT NULL,
  principal TEXT COLLATE "C" NOT NULL,
  role TEXT NOT NULL,
  method TEXT NOT NULL,
  resource TEXT COLLATE "C" NOT NULL,
  old_etag TEXT NOT NULL,
  new_etag TEXT NOT NULL,
  request_id TEXT NOT NULL
);
CREATE INDEX audit_log_by_resource ON audit_log (resource, seq);
CREATE INDEX audit_log_by_principal ON audit_log (principal, seq);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
