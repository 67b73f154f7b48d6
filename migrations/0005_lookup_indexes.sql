-- A live replay of shipments followed by id reads the log by shipment.
create index changes_shipment_seq on changes (shipment_id, seq);

-- Support looks parcels up by tracking number alone, across carriers and accounts.
create index shipments_tracking_number on shipments (tracking_number);

-- (A note on 0003: updates that change `status` or `late` are still not HOT,
-- as both columns are in the predicate of shipments_open_promises; repeat
-- scans with the same status, the most common update, are.)
