-- The webhook delivery worker's state on each endpoint. The endpoint row is the
-- queue: a worker claims an endpoint with work (changes past its cursor) with
-- FOR UPDATE SKIP LOCKED and holds a lease on it while it delivers, in seq
-- order; another process takes it over only once the lease has run out (a
-- crash loses nothing: the cursor moves only after a delivery succeeded).
alter table webhook_endpoints
    add column lease_until      timestamptz,
    add column leased_by        text,
    -- failed attempts at the delivery now due, and when to try it again
    add column attempts         int not null default 0,
    add column next_attempt_at  timestamptz,
    add column last_error       text;

-- the worker's claim looks only at live endpoints
create index webhook_endpoints_live on webhook_endpoints (next_attempt_at) where disabled_at is null;
-- the delivery log, newest first per endpoint
create index webhook_deliveries_endpoint on webhook_deliveries (endpoint_id, seq desc);
