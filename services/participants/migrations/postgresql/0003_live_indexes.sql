-- Live rows (not soft-deleted) in an index of their own: lists count them (total_size) by
-- scanning this small index instead of the table.
CREATE INDEX participants_live ON participants (seq) WHERE delete_time IS NULL;
CREATE INDEX registrations_live ON registrations (seq) WHERE delete_time IS NULL;
-- Live registrations (5 = REGISTRATION_STATUS_CANCELLED) by participant, covering the
-- participation statistics: distinct participants and registrations per participant are read
-- from this index alone (registration_summary.cc), not from a million table rows.
CREATE INDEX registrations_live_by_participant ON registrations (participant)
  WHERE status <> 5 AND delete_time IS NULL;
