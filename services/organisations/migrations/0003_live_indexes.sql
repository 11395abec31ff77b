-- Live rows (not soft-deleted) in an index of their own: lists count them (total_size) by
-- scanning this small index instead of the table.
CREATE INDEX organisations_live ON organisations (seq) WHERE delete_time IS NULL;
