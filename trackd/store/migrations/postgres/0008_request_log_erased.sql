-- GDPR erasure and the edges' request-log buffers (data-api.md §6): an edge records a request
-- and flushes it up to half a second later, so an entry naming a user can reach the log after
-- an erasure of that user removed the others. Each erasure leaves a mark here for a while
-- (`trackd.store.request_log.ERASED_KEPT_MS`): the SHA-256 of the erased customer id, never the
-- id, and when it was erased; an entry recorded at or before that time is not kept.
CREATE TABLE request_log_erased (
    workspace text NOT NULL,
    mark bytea NOT NULL,
    erased_at bigint NOT NULL,
    PRIMARY KEY (mark, workspace)
);
