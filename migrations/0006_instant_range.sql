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
-- Existing rows: the constraints are added NOT VALID, which checks every row
-- written from now on (an update too) without reading the table, and then
-- validated, each on its own. A database that holds an out-of-range row from
-- before keeps that constraint NOT VALID and says so in a WARNING, instead of
-- failing this migration at every start: no date can be put right without
-- knowing what the sender meant, and a NOT VALID constraint still refuses every
-- new out-of-range value. Such a row cannot be updated until it is put right
-- (the constraint is checked on every new row version). To find those rows:
--     select id from shipments where not instant_in_range(promised_by) ...
-- then correct or delete them and run
--     alter table <table> validate constraint <name>;

-- STRICT: a null (no instant) passes, as a CHECK lets a null through
create function instant_in_range(moment timestamptz) returns boolean
language sql immutable strict parallel safe
as $$ select moment >= '1970-01-01T00:00:00Z'::timestamptz and moment < '2200-01-01T00:00:00Z'::timestamptz $$;

alter table shipments
    add constraint shipments_promised_by_in_range check (instant_in_range(promised_by)) not valid,
    add constraint shipments_promised_from_in_range check (instant_in_range(promised_from)) not valid,
    add constraint shipments_status_at_in_range check (instant_in_range(status_at)) not valid,
    add constraint shipments_delivered_at_in_range check (instant_in_range(delivered_at)) not valid,
    add constraint shipments_estimated_delivery_in_range check (instant_in_range(estimated_delivery)) not valid,
    add constraint shipments_estimate_at_in_range check (instant_in_range(estimate_at)) not valid,
    add constraint shipments_first_estimated_delivery_in_range
        check (instant_in_range(first_estimated_delivery)) not valid,
    add constraint shipments_first_estimate_at_in_range check (instant_in_range(first_estimate_at)) not valid,
    add constraint shipments_location_at_in_range check (instant_in_range(location_at)) not valid,
    add constraint shipments_reason_at_in_range check (instant_in_range(reason_at)) not valid,
    add constraint shipments_last_event_at_in_range check (instant_in_range(last_event_at)) not valid;

alter table events
    add constraint events_occurred_at_in_range check (instant_in_range(occurred_at)) not valid,
    add constraint events_estimated_delivery_in_range check (instant_in_range(estimated_delivery)) not valid;

alter table promise_revisions
    add constraint promise_revisions_promised_by_in_range check (instant_in_range(promised_by)) not valid,
    add constraint promise_revisions_promised_from_in_range check (instant_in_range(promised_from)) not valid,
    add constraint promise_revisions_previous_promised_by_in_range
        check (instant_in_range(previous_promised_by)) not valid,
    add constraint promise_revisions_previous_promised_from_in_range
        check (instant_in_range(previous_promised_from)) not valid;

alter table late_deliveries
    add constraint late_deliveries_promised_by_in_range check (instant_in_range(promised_by)) not valid,
    add constraint late_deliveries_delivered_at_in_range check (instant_in_range(delivered_at)) not valid;

do $$
declare
    constraint_row record;
begin
    for constraint_row in
        select conrelid::regclass as table_name, conname from pg_constraint
        where conname like '%\_in\_range' and not convalidated
        order by conrelid::regclass::text, conname
    loop
        begin
            execute format('alter table %s validate constraint %I', constraint_row.table_name, constraint_row.conname);
        exception when check_violation then
            raise warning 'constraint % on % left NOT VALID: some rows hold instants out of range (see migrations/0006)',
                constraint_row.conname, constraint_row.table_name;
        end;
    end loop;
end;
$$;
