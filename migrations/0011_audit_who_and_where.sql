-- The audit log says who (the key and its name, as they were), from where (the
-- client's address and user agent) and, for a search, which accounts it touched:
-- one row per account touched, so each account's access log shows its own part.
alter table audit_log
    add column key_name    text,
    add column role        text,
    add column client_addr text,
    add column user_agent  text;

-- The audit log is append-only: the database refuses to change or delete a row.
create function audit_log_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'audit_log is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
end
$$;
create trigger audit_log_append_only before update or delete on audit_log
    for each row execute function audit_log_append_only();
create trigger audit_log_no_truncate before truncate on audit_log
    for each statement execute function audit_log_append_only();
