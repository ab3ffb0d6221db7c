-- Delete User (data-api.md §4): a user scheduled for hard delete, and when (epoch ms). The row
-- goes with the user at the hard delete; until then the profile shows `deletion_scheduled_at`.
CREATE TABLE user_deletions (
    workspace text NOT NULL,
    customer_id text NOT NULL,
    request_id text NOT NULL,
    due_at bigint NOT NULL,
    PRIMARY KEY (workspace, customer_id)
);
CREATE INDEX user_deletions_by_due ON user_deletions (due_at);

-- GDPR erasure (data-api.md §6): the audit record of each erasure applied. Never the identity
-- values: the request id, when it was submitted and applied, the identity types, and how many
-- users and events were erased.
CREATE TABLE erasures (
    workspace text NOT NULL,
    request_id text NOT NULL,
    submitted_time text,
    received_at bigint NOT NULL,
    applied_at bigint NOT NULL,
    identity_types text NOT NULL,
    users integer NOT NULL,
    events integer NOT NULL,
    PRIMARY KEY (workspace, request_id)
);
