-- Lateness caught at the deadline, at-risk, stale shipments and the on-time report.

alter table shipments
    add column reason         text,
    add column reason_at      timestamptz,
    add column reason_key     text,
    add column last_event_at  timestamptz;

-- The deadline sweep reads only promises that are open (not late, not closed)
-- and due; this index holds exactly those, ordered by deadline, so the sweep's
-- cost follows the shipments falling due, not the size of the table.
create index shipments_open_promises on shipments (promised_by)
    where not late and status not in ('delivered', 'returned_to_sender', 'cancelled');

-- the monthly on-time report selects by deadline
create index shipments_promised_by on shipments (promised_by);

create index late_deliveries_open on late_deliveries (account_id, id) where closed_at is null;
