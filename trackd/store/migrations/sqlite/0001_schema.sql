-- The embedded store: workspaces (and the revision every process watches), then users,
-- devices, events, schema catalogue and issues. Tables are made only if missing, so a data
-- dir from before versioned migrations takes this one as a no-op.
CREATE TABLE IF NOT EXISTS workspaces (id TEXT PRIMARY KEY, doc BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta VALUES ('revision', 0);

CREATE TABLE IF NOT EXISTS users (
    workspace TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}',
    identifiers TEXT NOT NULL DEFAULT '{}',
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    event_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace, customer_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS user_identifiers (
    workspace TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    PRIMARY KEY (workspace, name, value)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS devices (
    workspace TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    platform TEXT,
    app_version TEXT,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    last_ip TEXT,
    PRIMARY KEY (workspace, customer_id, device_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    workspace TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    action TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    doc BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_workspace ON events (workspace, seq);
CREATE INDEX IF NOT EXISTS events_by_customer ON events (workspace, customer_id, seq);
CREATE INDEX IF NOT EXISTS events_by_action ON events (workspace, action, seq);

CREATE TABLE IF NOT EXISTS schema_events (
    workspace TEXT NOT NULL,
    action TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    PRIMARY KEY (workspace, action)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS schema_attributes (
    workspace TEXT NOT NULL,
    action TEXT NOT NULL,
    attribute TEXT NOT NULL,
    type TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (workspace, action, attribute, type)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS issues (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace TEXT NOT NULL,
    request_id TEXT NOT NULL,
    action_index INTEGER NOT NULL,
    attribute TEXT,
    reason TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS issues_by_workspace ON issues (workspace, at);

CREATE TABLE IF NOT EXISTS processed (
    request_id TEXT PRIMARY KEY,
    workspace TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS counters (
    workspace TEXT NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (workspace, name)
) WITHOUT ROWID;
