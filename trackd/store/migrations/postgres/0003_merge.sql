-- Merged users (Merge Users, Identity Resolution; data-api.md §3): a merged user's customer id
-- is an alias of the live profile it went into (always the live one: merging that profile
-- later repoints its aliases), with the merged profile's moengage_id, and for an Identity
-- Resolution merge the identifier value it was made on (at most 50 users merge on one).
CREATE TABLE user_aliases (
    workspace text NOT NULL,
    alias text NOT NULL,
    customer_id text NOT NULL,
    moengage_id text,
    via_name text,
    via_value text,
    PRIMARY KEY (workspace, alias)
);
CREATE INDEX aliases_by_customer ON user_aliases (workspace, customer_id);
CREATE INDEX aliases_by_identifier ON user_aliases (workspace, via_name, via_value);

-- A merge moves the merged user's identifier values: found by customer.
CREATE INDEX identifiers_by_customer ON user_identifiers (workspace, customer_id);
