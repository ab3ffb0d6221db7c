-- Track Device (data-api.md §1): the device attributes it keeps (push_id, model,
-- moe_push_opted, moe_push_provisional_opted, os_version, moe_gaid, idfv) as one JSON object
-- beside the columns every device has; a device only events made has none.
ALTER TABLE devices ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}'::jsonb;
