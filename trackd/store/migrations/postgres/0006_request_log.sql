-- The request log (issue 13): the last `request_log_size` /v1 requests of each workspace, as
-- the edges recorded them off the hot path (trackd.edge.request_log), newest first by seq; and
-- per-minute counts of what the edges answered (the console's Overview), kept a day. `doc` is
-- JSON text and `body` bytes, so every value comes back as it was sent (U+0000 included).
CREATE TABLE request_log (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace text NOT NULL,
    at bigint NOT NULL,
    status integer NOT NULL,
    customer_id text,
    doc text NOT NULL,
    body bytea
);
CREATE INDEX request_log_by_workspace ON request_log (workspace, seq);

CREATE TABLE request_minutes (
    workspace text NOT NULL,
    minute bigint NOT NULL,
    accepted_events bigint NOT NULL,
    accepted_requests bigint NOT NULL,
    rejected_requests bigint NOT NULL,
    PRIMARY KEY (workspace, minute)
);
