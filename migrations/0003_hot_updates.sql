-- Applying an event updates its shipment. Leave room on each page, and index
-- no column that every update changes (updated_at), so that most of these
-- updates are HOT: written in place, without touching the table's indexes.
-- `updated_after` in the shipment list now filters within the account's
-- shipments; clients that poll for changes have /v1/changes for that.
alter table shipments set (fillfactor = 70);
drop index shipments_account_updated;
