-- A carrier + tracking number is unique within an account, not across accounts:
-- a 409 for a number another account registered told a customer it existed
-- elsewhere, and the first account to register it received every carrier event
-- for it. A carrier event addressed by carrier + tracking number now reaches every
-- shipment with that number the key may write to.
--
-- Existing data needs nothing more: the new constraint is weaker than the old one,
-- so every row that satisfied (carrier, tracking_number) satisfies it.
alter table shipments
    add constraint shipments_account_carrier_tracking_number_key unique (account_id, carrier, tracking_number);
alter table shipments drop constraint shipments_carrier_tracking_number_key;
-- the batch endpoint finds a number's shipments across accounts
create index shipments_carrier_tracking_number on shipments (carrier, tracking_number);

-- A new shipment is a change too: `created`, with the shipment as it was created.
alter table changes drop constraint changes_kind_check;
alter table changes
    add constraint changes_kind_check check (kind in ('created', 'event', 'promise_revised', 'late', 'at_risk'));
