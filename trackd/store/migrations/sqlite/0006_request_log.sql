-- The request log (issue 13): the last `request_log_size` /v1 requests of each workspace, as
-- the edge recorded them off the hot path (trackd.edge.request_log), newest first by seq; and
-- per-minute counts of what the edges answered (the console's Overview), kept a day.
CREATE TABLE IF NOT EXISTS request_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace TEXT NOT NULL,
    at INTEGER NOT NULL,
    status INTEGER NOT NULL,
    customer_id TEXT,
    doc BLOB NOT NULL,
    body BLOB
);
CREATE INDEX IF NOT EXISTS request_log_by_workspace ON request_log (workspace, seq);

CREATE TABLE IF NOT EXISTS request_minutes (
    workspace TEXT NOT NULL,
    minute INTEGER NOT NULL,
    accepted_events INTEGER NOT NULL,
    accepted_requests INTEGER NOT NULL,
    rejected_requests INTEGER NOT NULL,
    PRIMARY KEY (workspace, minute)
) WITHOUT ROWID;
