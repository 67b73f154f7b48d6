-- The core: accounts and keys, shipments with their timeline and promise
-- history, lateness records, idempotent creates, and the change log.

create table accounts (
    id          text primary key,
    name        text not null check (length(name) between 1 and 200),
    timezone    text not null default 'UTC',
    created_at  timestamptz not null default now()
);

create table api_keys (
    id           text primary key,
    role         text not null check (role in ('customer', 'carrier', 'support', 'admin')),
    account_id   text references accounts (id),
    -- a carrier key may be limited to one carrier's shipments
    carrier      text,
    name         text,
    -- sha256 of the secret; secrets are random and long, so a fast hash is the right one
    secret_hash  bytea not null unique,
    created_at   timestamptz not null default now(),
    revoked_at   timestamptz,
    check (role <> 'customer' or account_id is not null)
);

create table shipments (
    id               text primary key,
    account_id       text not null references accounts (id),
    carrier          text not null,
    tracking_number  text not null,
    reference        text,
    service_level    text,
    promised_by      timestamptz not null,
    promised_from    timestamptz,
    origin           jsonb,
    destination      jsonb,
    recipient        jsonb,
    metadata         jsonb,
    -- the fold of the events (domain.shipment.Progress)
    status                    text not null default 'label_created',
    status_at                 timestamptz,
    status_key                text,
    delivered_at              timestamptz,
    delivered_key             text,
    estimated_delivery        timestamptz,
    estimate_at               timestamptz,
    estimate_key              text,
    first_estimated_delivery  timestamptz,
    first_estimate_at         timestamptz,
    first_estimate_key        text,
    location                  jsonb,
    location_at               timestamptz,
    location_key              text,
    -- a lateness record stands for this shipment
    late             boolean not null default false,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    version          integer not null default 1,
    unique (carrier, tracking_number),
    check (promised_from is null or promised_from <= promised_by)
);

-- keyset pagination of an account's shipments, newest first
create index shipments_account_id on shipments (account_id, id desc);
create index shipments_account_reference on shipments (account_id, reference) where reference is not null;
create index shipments_account_updated on shipments (account_id, updated_at);

create table events (
    shipment_id         text not null references shipments (id),
    key                 text not null,
    event_id            text,
    status              text not null,
    occurred_at         timestamptz not null,
    location            jsonb,
    description         text,
    reason              text,
    estimated_delivery  timestamptz,
    received_at         timestamptz not null default now(),
    primary key (shipment_id, key)
);

create index events_timeline on events (shipment_id, occurred_at, key);

create table promise_revisions (
    id                      bigint generated always as identity primary key,
    shipment_id             text not null references shipments (id),
    promised_by             timestamptz not null,
    promised_from           timestamptz,
    previous_promised_by    timestamptz not null,
    previous_promised_from  timestamptz,
    reason                  text not null,
    revised_at              timestamptz not null,
    revised_by              text references api_keys (id)
);

create index promise_revisions_shipment on promise_revisions (shipment_id, id);

-- One record per broken promise. detected_by is 'delivery' (delivered after the
-- promise, found when the delivery arrived) or 'deadline' (found when the
-- promise passed with the shipment still on its way).
create table late_deliveries (
    id              text primary key,
    shipment_id     text not null unique references shipments (id),
    account_id      text not null references accounts (id),
    carrier         text not null,
    promised_by     timestamptz not null,
    detected_at     timestamptz not null,
    detected_by     text not null check (detected_by in ('delivery', 'deadline')),
    status_at_detection    text,
    location_at_detection  jsonb,
    delivered_at    timestamptz,
    delay_seconds   bigint generated always as (extract(epoch from delivered_at - promised_by)::bigint) stored,
    closed_at       timestamptz,
    created_at      timestamptz not null default now()
);

create index late_deliveries_account on late_deliveries (account_id, id);

create table idempotency_keys (
    scope         text not null,
    key           text not null,
    request_hash  bytea not null,
    status        integer not null,
    body          bytea not null,
    created_at    timestamptz not null default now(),
    primary key (scope, key)
);

-- Support reads of other accounts' shipments.
create table audit_log (
    id           bigint generated always as identity primary key,
    key_id       text not null,
    action       text not null,
    account_id   text,
    shipment_id  text,
    at           timestamptz not null default now()
);

-- The change log. Writers append under a transaction-scoped advisory lock
-- taken just before the insert and held to commit, so seq values become
-- visible in order: a reader that has seen seq N never later finds a new
-- row below N. `body` is the change message without its seq, encoded once.
create sequence changes_seq;

create table changes (
    seq          bigint primary key,
    account_id   text not null,
    shipment_id  text not null,
    kind         text not null check (kind in ('event', 'promise_revised', 'late', 'at_risk')),
    body         bytea not null,
    created_at   timestamptz not null default now()
);

create index changes_account_seq on changes (account_id, seq);
