-- Delete User (data-api.md §4): a user scheduled for hard delete, and when (epoch ms). The row
-- goes with the user at the hard delete; until then the profile shows `deletion_scheduled_at`.
CREATE TABLE IF NOT EXISTS user_deletions (
    workspace TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    due_at INTEGER NOT NULL,
    PRIMARY KEY (workspace, customer_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS user_deletions_by_due ON user_deletions (due_at);

-- GDPR erasure (data-api.md §6): the audit record of each erasure applied. Never the identity
-- values: the request id, when it was submitted and applied, the identity types, and how many
-- users and events were erased.
CREATE TABLE IF NOT EXISTS erasures (
    workspace TEXT NOT NULL,
    request_id TEXT NOT NULL,
    submitted_time TEXT,
    received_at INTEGER NOT NULL,
    applied_at INTEGER NOT NULL,
    identity_types TEXT NOT NULL,
    users INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (workspace, request_id)
) WITHOUT ROWID;
