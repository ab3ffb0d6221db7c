-- Every profile gets a stable internal id, `moengage_id`: 24 lowercase hex characters (96
-- random bits of a v4 UUID), made when the profile's row is first inserted (data-api.md §0);
-- existing profiles get theirs now.
ALTER TABLE users ADD COLUMN moengage_id text NOT NULL
    DEFAULT substr(replace(gen_random_uuid()::text, '-', ''), 1, 24);

CREATE UNIQUE INDEX users_by_moengage_id ON users (workspace, moengage_id);
