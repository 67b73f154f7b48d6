-- The monthly report reads a month of shipments in one pass, without joins to
-- the lateness records or the ratings (two hash tables as large as those whole
-- tables, built on every report), and its cases without a lookup per case into
-- shipments. So what it needs from those tables is kept on the rows it scans,
-- by triggers, in the transaction of every write that changes it, whichever
-- path writes (events, the deadline sweep, feedback links, cases, raw SQL).

-- the lateness record's delay (late_deliveries.delay_seconds), once delivered;
-- the recipient's rating (feedback.rating); and the lane the report groups by,
-- origin country to destination country. (The generated column rewrites the
-- table once, here.)
alter table shipments
    add column late_delay_seconds bigint,
    add column rating             smallint,
    add column lane               text generated always as
        (coalesce(origin->>'country', '?') || '-' || coalesce(destination->>'country', '?')) stored;

-- the case's shipment's carrier and lane (origin country - destination country),
-- as the report groups them; null for a case on the account
alter table cases
    add column carrier text,
    add column lane    text;

create function late_delay_on_shipment() returns trigger language plpgsql as $$
begin
    if tg_op in ('UPDATE', 'DELETE') then
        update shipments set late_delay_seconds = null
        where id = old.shipment_id and late_delay_seconds is not null;
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
        update shipments set late_delay_seconds = new.delay_seconds
        where id = new.shipment_id and late_delay_seconds is distinct from new.delay_seconds;
    end if;
    return null;
end
$$;
-- a record made at the deadline has no delay yet: no write on the sweep's path
create trigger late_delay_on_insert after insert on late_deliveries
    for each row when (new.delay_seconds is not null) execute function late_delay_on_shipment();
create trigger late_delay_on_update after update on late_deliveries
    for each row when (old.delay_seconds is distinct from new.delay_seconds or old.shipment_id <> new.shipment_id)
    execute function late_delay_on_shipment();
create trigger late_delay_on_delete after delete on late_deliveries
    for each row when (old.delay_seconds is not null) execute function late_delay_on_shipment();

create function rating_on_shipment() returns trigger language plpgsql as $$
begin
    if tg_op in ('UPDATE', 'DELETE') then
        update shipments set rating = null where id = old.shipment_id and rating is not null;
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
        update shipments set rating = new.rating where id = new.shipment_id and rating is distinct from new.rating;
    end if;
    return null;
end
$$;
create trigger rating_on_insert after insert on feedback
    for each row execute function rating_on_shipment();
create trigger rating_on_update after update on feedback
    for each row when (old.rating <> new.rating or old.shipment_id <> new.shipment_id)
    execute function rating_on_shipment();
create trigger rating_on_delete after delete on feedback
    for each row execute function rating_on_shipment();

-- No path changes a shipment's carrier, origin or destination today; if one
-- does, its cases follow.
create function case_shipment_keys() returns trigger language plpgsql as $$
begin
    select s.carrier, s.lane into new.carrier, new.lane
    from shipments s where s.id = new.shipment_id;  -- none: both null
    return new;
end
$$;
create trigger case_shipment_keys before insert or update of shipment_id, carrier, lane on cases
    for each row execute function case_shipment_keys();

create function shipment_keys_to_cases() returns trigger language plpgsql as $$
begin
    update cases set shipment_id = shipment_id where shipment_id = new.id;
    return null;
end
$$;
create trigger shipment_keys_to_cases after update of carrier, origin, destination on shipments
    for each row when (old.carrier <> new.carrier
                       or old.origin->>'country' is distinct from new.origin->>'country'
                       or old.destination->>'country' is distinct from new.destination->>'country')
    execute function shipment_keys_to_cases();

-- The report's delays per group, gathered in parallel workers: array_agg has
-- no combine function before PostgreSQL 16, so its partial aggregation needs this.
create aggregate report_delays(bigint) (
    sfunc = array_append, stype = bigint[], combinefunc = array_cat, parallel = safe
);

-- The report's cases: those opened in a month, by their opening.
create index cases_opened_at on cases (opened_at);

-- The rows written before this migration.
update shipments s set late_delay_seconds = l.delay_seconds
from late_deliveries l
where l.shipment_id = s.id and l.delay_seconds is not null;

update shipments s set rating = f.rating
from feedback f
where f.shipment_id = s.id;

update cases set shipment_id = shipment_id where shipment_id is not null;
