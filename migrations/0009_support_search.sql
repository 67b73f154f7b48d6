-- The support lookup (GET /v1/support/search): shipments found across accounts by
-- tracking number, reference, recipient email, recipient phone or recipient name.

-- Both ship with PostgreSQL (the embedded one too) and are trusted extensions: the
-- database's owner may create them.
create extension if not exists pg_trgm;
create extension if not exists unaccent;

-- unaccent() is only STABLE (its dictionary could change), so it cannot be indexed;
-- this wrapper names the dictionary and is declared IMMUTABLE, the usual way to index
-- it. Names are folded: accents dropped, lower case ("Begoña" -> "begona").
create function ontime_fold(value text) returns text
    language sql immutable parallel safe strict
    return lower(public.unaccent('public.unaccent'::regdictionary, value));

-- An account's country (ISO 3166-1 alpha-2): how its recipients' phone numbers
-- written in national form are read. Unknown for accounts made before this migration.
alter table accounts add column country text check (country ~ '^[A-Z]{2}$');

-- The recipient's phone in E.164, computed by ontime on create (phonenumbers).
alter table shipments add column recipient_phone_e164 text;

-- Existing rows, where SQL can do it alone: a phone written in international form
-- (+ or 00, then the digits) is '+' and its digits. One in national form needs its
-- account's country, which no account had before this migration: left null.
update shipments
set recipient_phone_e164 = '+' || substr(digits, case when digits like '00%' then 3 else 1 end)
from (
    select id as shipment_id, regexp_replace(recipient ->> 'phone', '[^0-9]', '', 'g') as digits,
           ltrim(recipient ->> 'phone') as phone
    from shipments
    where recipient ->> 'phone' is not null
) as written
where shipments.id = written.shipment_id
  and (written.phone like '+%' or written.digits like '00%')
  and recipient ->> 'phone' !~ '\(0\)'
  and length(written.digits) between 8 and 17;

-- One index per way to be found, newest first within each.
create index shipments_reference_id on shipments (reference, id desc) where reference is not null;
create index shipments_recipient_email on shipments (lower(recipient ->> 'email'), id desc)
    where recipient ->> 'email' is not null;
create index shipments_recipient_phone on shipments (recipient_phone_e164, id desc)
    where recipient_phone_e164 is not null;
create index shipments_recipient_name_trgm on shipments using gin (ontime_fold(recipient ->> 'name') gin_trgm_ops)
    where recipient ->> 'name' is not null;

-- A search is audited with what was asked and which shipments it answered.
alter table audit_log add column query text;
alter table audit_log add column shipment_ids text[];
