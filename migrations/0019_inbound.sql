-- Inbound carrier and aggregator payloads (issue 12).
--
-- An integration is an account's connection to one source that signs its
-- webhooks (AfterShip, EasyPost): the secret is kept so the signature can be
-- checked, and shown to the account once, when the integration is created.
create table integrations (
    id          text primary key,
    account_id  text not null references accounts (id),
    source      text not null,
    name        text,
    secret      text not null,
    created_at  timestamptz not null default now()
);
create index integrations_account on integrations (account_id, id desc);

-- Every inbound body as it came, what it became and what could not be read,
-- kept for ONTIME_INBOUND_RETENTION_DAYS (default 30) and re-playable.
create table inbound_payloads (
    id              text primary key,
    account_id      text references accounts (id),
    source          text not null,
    integration_id  text references integrations (id),
    key_id          text references api_keys (id),
    received_at     timestamptz not null default now(),
    content_type    text,
    body            bytea not null,
    events          integer not null default 0,
    matched         integer not null default 0,
    unmatched       integer not null default 0,
    errors          jsonb not null default '[]'
);
-- keyset pagination of an account's payloads, newest first
create index inbound_payloads_account on inbound_payloads (account_id, id desc);
-- the retention loop deletes the oldest first
create index inbound_payloads_received on inbound_payloads (received_at);

-- An event that came through an adapter keeps the source's own code and text,
-- how its time was placed, and the payload it came in.
alter table events
    add column carrier_code        text,
    add column carrier_status      text,
    add column time_rule           text check (time_rule in ('offset', 'source_zone', 'location', 'account')),
    add column inbound_payload_id  text;
create index events_inbound_payload on events (inbound_payload_id) where inbound_payload_id is not null;
