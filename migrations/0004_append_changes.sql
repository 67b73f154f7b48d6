-- Appending to the change log in one round trip: take the append lock, send
-- the wake-up (delivered at commit), draw the seqs and insert, in this order.
-- The lock is then held for this one call and the commit, not for several
-- round trips between the app and the database.
create function append_changes(accounts text[], shipments text[], kinds text[], bodies bytea[])
returns setof bigint
language plpgsql
as $$
begin
    perform pg_advisory_xact_lock(7244500001);
    perform pg_notify('ontime_changes', '');
    return query
        insert into changes (seq, account_id, shipment_id, kind, body)
        select nextval('changes_seq'), c.account_id, c.shipment_id, c.kind, c.body
        from unnest(accounts, shipments, kinds, bodies) with ordinality as c(account_id, shipment_id, kind, body, n)
        order by c.n
        returning seq;
end;
$$;
