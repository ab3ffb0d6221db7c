-- Every profile gets a stable internal id, `moengage_id`: 24 lowercase hex characters (96
-- random bits), made by the store when the profile's row is first inserted (data-api.md §0).
-- SQLite takes a non-constant default only in CREATE TABLE, so the table is rebuilt, giving
-- the existing profiles theirs.
CREATE TABLE users_new (
    workspace TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}',
    identifiers TEXT NOT NULL DEFAULT '{}',
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    event_count INTEGER NOT NULL DEFAULT 0,
    moengage_id TEXT NOT NULL DEFAULT (lower(hex(randomblob(12)))),
    PRIMARY KEY (workspace, customer_id)
) WITHOUT ROWID;

INSERT INTO users_new (workspace, customer_id, attributes, identifiers, first_seen, last_seen,
                       event_count)
SELECT workspace, customer_id, attributes, identifiers, first_seen, last_seen, event_count
FROM users;

DROP TABLE users;

ALTER TABLE users_new RENAME TO users;

CREATE UNIQUE INDEX users_by_moengage_id ON users (workspace, moengage_id);
