-- Workspaces, users, devices, events, schema catalogue, issues and counters on PostgreSQL.
-- Applied once, in one transaction, by `trackd.store.postgres.migrate` (recorded in
-- schema_migrations). Times are epoch milliseconds (bigint), as in the embedded store.

CREATE TABLE workspaces (
    id text PRIMARY KEY,
    doc jsonb NOT NULL
);

-- One row: `revision` moves in the same transaction as every workspace change.
CREATE TABLE meta (
    key text PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO meta VALUES ('revision', 0);

CREATE TABLE users (
    workspace text NOT NULL,
    customer_id text NOT NULL,
    attributes jsonb NOT NULL DEFAULT '{}',
    identifiers jsonb NOT NULL DEFAULT '{}',
    first_seen bigint NOT NULL,
    last_seen bigint NOT NULL,
    event_count bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace, customer_id)
);

CREATE TABLE user_identifiers (
    workspace text NOT NULL,
    name text NOT NULL,
    value text NOT NULL,
    customer_id text NOT NULL,
    PRIMARY KEY (workspace, name, value)
);

CREATE TABLE devices (
    workspace text NOT NULL,
    customer_id text NOT NULL,
    device_id text NOT NULL,
    platform text,
    app_version text,
    first_seen bigint NOT NULL,
    last_seen bigint NOT NULL,
    last_ip text,
    PRIMARY KEY (workspace, customer_id, device_id)
);

-- Events, partitioned by month of current_time (`event_time`, epoch ms). The adapter creates
-- each month's partition before the first batch that needs it (events_YYYY_MM); times outside
-- the years it partitions land in the DEFAULT partition. `seq` is the global processing order
-- (newest first paging, tail). No unique key: one must include the partition key, and
-- `processed` already keeps a request from being stored twice.
CREATE TABLE events (
    seq bigint GENERATED ALWAYS AS IDENTITY,
    event_id text NOT NULL,
    workspace text NOT NULL,
    customer_id text NOT NULL,
    action text NOT NULL,
    event_time bigint NOT NULL,
    doc json NOT NULL  -- json, not jsonb: the stored text keeps the attributes' order
) PARTITION BY RANGE (event_time);
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE INDEX events_by_workspace ON events (workspace, seq);
CREATE INDEX events_by_customer ON events (workspace, customer_id, seq);
CREATE INDEX events_by_action ON events (workspace, action, seq);

CREATE TABLE schema_events (
    workspace text NOT NULL,
    action text NOT NULL,
    count bigint NOT NULL,
    first_seen bigint NOT NULL,
    last_seen bigint NOT NULL,
    PRIMARY KEY (workspace, action)
);

CREATE TABLE schema_attributes (
    workspace text NOT NULL,
    action text NOT NULL,
    attribute text NOT NULL,
    type text NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (workspace, action, attribute, type)
);

CREATE TABLE issues (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace text NOT NULL,
    request_id text NOT NULL,
    action_index integer NOT NULL,
    attribute text,
    reason text NOT NULL,
    at bigint NOT NULL
);
CREATE INDEX issues_by_workspace ON issues (workspace, at);

CREATE TABLE processed (
    request_id text PRIMARY KEY,
    workspace text NOT NULL
);

CREATE TABLE counters (
    workspace text NOT NULL,
    name text NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (workspace, name)
);

-- JSON Merge Patch (RFC 7396), what SQLite's json_patch does: `jsonb ||` for flat objects, and
-- nested objects are merged rather than replaced.
CREATE FUNCTION trackd_merge_patch(target jsonb, patch jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k text;
    v jsonb;
BEGIN
    IF patch IS NULL OR jsonb_typeof(patch) <> 'object' THEN
        RETURN patch;
    END IF;
    IF target IS NULL OR jsonb_typeof(target) <> 'object' THEN
        target := '{}';
    END IF;
    FOR k, v IN SELECT * FROM jsonb_each(patch) LOOP
        IF jsonb_typeof(v) = 'null' THEN
            target := target - k;
        ELSE
            target := jsonb_set(target, ARRAY[k], trackd_merge_patch(target -> k, v));
        END IF;
    END LOOP;
    RETURN target;
END
$$;
