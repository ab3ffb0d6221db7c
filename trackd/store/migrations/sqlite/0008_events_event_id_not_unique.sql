-- events.event_id is no longer UNIQUE (issue 14): `processed` already keeps a request, hence
-- its events, from being stored twice (PostgreSQL never had the key), and the unique index on
-- random ids cost every insert a look into a b-tree as large as the table. SQLite cannot drop a
-- constraint, so the table is rebuilt with its rows, positions (`seq`) and position counter.
CREATE TABLE events_rebuilt (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    workspace TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    action TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    doc BLOB NOT NULL
);
INSERT INTO events_rebuilt (seq, event_id, workspace, customer_id, action, event_time, doc)
    SELECT seq, event_id, workspace, customer_id, action, event_time, doc FROM events ORDER BY seq;
DELETE FROM sqlite_sequence WHERE name = 'events_rebuilt';
INSERT INTO sqlite_sequence (name, seq) SELECT 'events_rebuilt', seq FROM sqlite_sequence
    WHERE name = 'events';
DROP TABLE events;
ALTER TABLE events_rebuilt RENAME TO events;
CREATE INDEX events_by_workspace ON events (workspace, seq);
CREATE INDEX events_by_customer ON events (workspace, customer_id, seq);
CREATE INDEX events_by_action ON events (workspace, action, seq, event_time);
