-- Satisfaction after delivery: one rating per shipment, posted by its recipient
-- through a signed, single-use link (feedback_url) that needs no API key.
--
-- The link's signing key is a row, not a setting, so every server process signs
-- and verifies with the same key and a restart invalidates no link. Keys rotate
-- by adding a row; a token names the key (kid) it was signed with.
create table feedback_keys (
    kid         smallint primary key,
    secret      bytea not null check (length(secret) >= 32),
    created_at  timestamptz not null default now()
);
-- gen_random_uuid() draws from the server's strong random source (122 bits each);
-- two of them through sha256 make a 32-byte key without the pgcrypto extension
insert into feedback_keys (kid, secret)
values (1, sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')));

-- The primary key makes the link single-use: a second post finds the row there.
-- account_id, the delivery instant and whether the promise was kept are copied
-- from the shipment, so that the monthly report splits ratings by on-time and
-- late without reading lateness records.
create table feedback (
    shipment_id   text primary key references shipments (id),
    account_id    text not null references accounts (id),
    rating        smallint not null check (rating between 1 and 5),
    comment       text check (length(comment) <= 2000),
    -- the shipment's delivery and whether it kept its promise, as it stood when rated
    delivered_at  timestamptz not null,
    on_time       boolean not null,
    received_at   timestamptz not null
);
create index feedback_account_received on feedback (account_id, received_at);
create index feedback_delivered on feedback (delivered_at);

insert into change_kinds (kind) values ('feedback_received');
