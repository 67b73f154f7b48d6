-- Webhooks: an account's endpoints, each with its own cursor into the change log
-- (the last seq delivered), and one row per delivery attempt chain. The queue is
-- these tables, read with FOR UPDATE SKIP LOCKED, so several processes share it
-- and a restart loses nothing. The delivery worker itself is not written yet.
create table webhook_endpoints (
    id                  text primary key,
    account_id          text not null references accounts (id),
    url                 text not null check (length(url) between 1 and 2000),
    -- the change kinds wanted; empty means every kind the account's feed carries
    kinds               text[] not null default '{}',
    late_only           boolean not null default false,
    secret              text not null,
    -- during a rotation the previous secret still signs until this instant
    previous_secret     text,
    previous_until      timestamptz,
    delivered_seq       bigint not null default 0,
    failing_since       timestamptz,
    disabled_at         timestamptz,
    created_at          timestamptz not null default now()
);
create index webhook_endpoints_account on webhook_endpoints (account_id);

create table webhook_deliveries (
    id              text primary key,
    endpoint_id     text not null references webhook_endpoints (id) on delete cascade,
    seq             bigint not null,
    attempts        int not null default 0,
    due_at          timestamptz not null default now(),
    last_status     int,
    last_error      text,
    last_latency_ms int,
    delivered_at    timestamptz,
    created_at      timestamptz not null default now(),
    unique (endpoint_id, seq)
);
create index webhook_deliveries_due on webhook_deliveries (due_at) where delivered_at is null;

-- an endpoint that failed for its whole retry window is disabled, and the account told
insert into change_kinds (kind) values ('webhook_disabled');
