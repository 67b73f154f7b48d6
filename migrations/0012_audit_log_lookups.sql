-- GET /v1/audit and GET /v1/access-log page through the audit log newest first
-- (by id), narrowed by account, key or shipment: an index for each, ending in id
-- so a page is one index range scan. since/until use the `at` index.
create index audit_log_account_id on audit_log (account_id, id);
create index audit_log_key_id on audit_log (key_id, id);
create index audit_log_shipment_ids on audit_log using gin (shipment_ids);
create index audit_log_at on audit_log (at);
