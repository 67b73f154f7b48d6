-- Instants a shipping business can mean: from 1970-01-01T00:00:00Z (inclusive) to
-- 2200-01-01T00:00:00Z (exclusive), as domain.shipment.utc refuses at the edge. The
-- database refuses the rest too, whoever writes: a year-1 promise once stopped the
-- deadline sweep for every account (asyncpg reads year 1 and ±infinity back as
-- naive datetimes).
--
-- Every column that holds an instant a client sent, or one derived from it (the
-- fold's times come from events, a lateness record's from the promise and the
-- delivery scan). Times the server stamps (created_at, received_at, detected_at...)
-- come from its clock and are left alone.
--
-- Existing rows: an instant out of range from before (a year-1 promise, an
-- infinity) is put right first, moved to the nearest edge of the range (year 1
-- becomes 1970-01-01T00:00:00Z: a promise that old is just as broken), and what
-- it was is kept in instants_put_right for an operator to see and correct. Then
-- every constraint holds for every row: nothing out of range is stored, no row
-- is left that a later update would fail on, and no sweep meets a naive instant.
-- (The constraints are checked in this migration's transaction, under its lock,
-- one scan a table; at this project's sizes that is seconds at most.)

create table instants_put_right (
    table_name  text not null,
    row_key     text not null,
    column_name text not null,
    original    text not null,
    put_right_to timestamptz not null,
    put_right_at timestamptz not null default now()
);

-- STRICT: a null (no instant) passes, as a CHECK lets a null through
create function instant_in_range(moment timestamptz) returns boolean
language sql immutable strict parallel safe
as $$ select moment >= '1970-01-01T00:00:00Z'::timestamptz and moment < '2200-01-01T00:00:00Z'::timestamptz $$;

create function put_in_range(moment timestamptz) returns timestamptz
language sql immutable strict parallel safe
as $$ select greatest(least(moment, '2199-12-31T23:59:59.999999Z'::timestamptz), '1970-01-01T00:00:00Z'::timestamptz) $$;

-- a shipment's promise first, its window with it (promised_from <= promised_by holds throughout)
insert into instants_put_right (table_name, row_key, column_name, original, put_right_to)
select 'shipments', id, 'promised_by', promised_by::text, put_in_range(promised_by)
from shipments where not instant_in_range(promised_by)
union all
select 'shipments', id, 'promised_from', promised_from::text, put_in_range(promised_by)
from shipments where not instant_in_range(promised_by) and promised_from > put_in_range(promised_by);
update shipments
set promised_from = least(promised_from, put_in_range(promised_by)), promised_by = put_in_range(promised_by)
where not instant_in_range(promised_by);

do $$
declare
    target record;
begin
    for target in
        select * from (values
            ('shipments', 'id', 'promised_from'),
            ('shipments', 'id', 'status_at'), ('shipments', 'id', 'delivered_at'),
            ('shipments', 'id', 'estimated_delivery'), ('shipments', 'id', 'estimate_at'),
            ('shipments', 'id', 'first_estimated_delivery'), ('shipments', 'id', 'first_estimate_at'),
            ('shipments', 'id', 'location_at'), ('shipments', 'id', 'reason_at'),
            ('shipments', 'id', 'last_event_at'),
            ('events', 'shipment_id || ''/'' || key', 'occurred_at'),
            ('events', 'shipment_id || ''/'' || key', 'estimated_delivery'),
            ('promise_revisions', 'id::text', 'promised_by'), ('promise_revisions', 'id::text', 'promised_from'),
            ('promise_revisions', 'id::text', 'previous_promised_by'),
            ('promise_revisions', 'id::text', 'previous_promised_from'),
            ('late_deliveries', 'id', 'promised_by'), ('late_deliveries', 'id', 'delivered_at')
        ) as t (table_name, row_key, column_name)
    loop
        execute format(
            'insert into instants_put_right (table_name, row_key, column_name, original, put_right_to)'
            ' select %L, %s, %L, %I::text, put_in_range(%I) from %I where not instant_in_range(%I)',
            target.table_name, target.row_key, target.column_name, target.column_name, target.column_name,
            target.table_name, target.column_name);
        execute format(
            'update %I set %I = put_in_range(%I) where not instant_in_range(%I)',
            target.table_name, target.column_name, target.column_name, target.column_name);
    end loop;
end;
$$;

alter table shipments
    add constraint shipments_promised_by_in_range check (instant_in_range(promised_by)),
    add constraint shipments_promised_from_in_range check (instant_in_range(promised_from)),
    add constraint shipments_status_at_in_range check (instant_in_range(status_at)),
    add constraint shipments_delivered_at_in_range check (instant_in_range(delivered_at)),
    add constraint shipments_estimated_delivery_in_range check (instant_in_range(estimated_delivery)),
    add constraint shipments_estimate_at_in_range check (instant_in_range(estimate_at)),
    add constraint shipments_first_estimated_delivery_in_range
        check (instant_in_range(first_estimated_delivery)),
    add constraint shipments_first_estimate_at_in_range check (instant_in_range(first_estimate_at)),
    add constraint shipments_location_at_in_range check (instant_in_range(location_at)),
    add constraint shipments_reason_at_in_range check (instant_in_range(reason_at)),
    add constraint shipments_last_event_at_in_range check (instant_in_range(last_event_at));

alter table events
    add constraint events_occurred_at_in_range check (instant_in_range(occurred_at)),
    add constraint events_estimated_delivery_in_range check (instant_in_range(estimated_delivery));

alter table promise_revisions
    add constraint promise_revisions_promised_by_in_range check (instant_in_range(promised_by)),
    add constraint promise_revisions_promised_from_in_range check (instant_in_range(promised_from)),
    add constraint promise_revisions_previous_promised_by_in_range
        check (instant_in_range(previous_promised_by)),
    add constraint promise_revisions_previous_promised_from_in_range
        check (instant_in_range(previous_promised_from));

alter table late_deliveries
    add constraint late_deliveries_promised_by_in_range check (instant_in_range(promised_by)),
    add constraint late_deliveries_delivered_at_in_range check (instant_in_range(delivered_at));
