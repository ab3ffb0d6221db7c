-- Events by name and time range (`GET .../events?action=A&since=S&until=U`) walked the
-- name's index newest first and read each row's time from the table: at 10 million events a
-- range a month back cost seconds (bench/reads.py). The index now carries the time, so the walk
-- reads rows only for events inside the range.
DROP INDEX events_by_action;
CREATE INDEX events_by_action ON events (workspace, action, seq, event_time);
