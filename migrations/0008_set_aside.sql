-- Rows a background loop could not process, set aside so that the rest go on
-- (api/shell/set_aside.py). A loop skips its rows here until `retry_after`,
-- which backs off with each failed attempt; a row that then succeeds leaves
-- the table. What stays is for an operator: the error says why.
create table set_aside (
    loop         text not null,
    row_id       text not null,
    error        text not null,
    attempts     integer not null default 1,
    first_seen   timestamptz not null,
    last_seen    timestamptz not null,
    retry_after  timestamptz not null,
    primary key (loop, row_id)
);
