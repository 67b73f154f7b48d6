-- Internal notes on shipments, and cases: the support desk's ticket queue, each
-- case with a response-time promise (first response within, resolution within)
-- that the deadline sweep watches as it watches delivery promises.

-- Notes are internal: only support and admin keys read or write them, and they
-- never enter the change log, so no customer feed, live stream or webhook can
-- carry one.
create table shipment_notes (
    id           text primary key,
    shipment_id  text not null references shipments (id),
    account_id   text not null references accounts (id),
    author_key   text not null references api_keys (id),
    body         text not null check (length(body) between 1 and 10000),
    created_at   timestamptz not null
);
create index shipment_notes_shipment on shipment_notes (shipment_id, id);

-- The response-time promise per type and priority. The defaults are rows (one
-- per type and priority); an account overrides any of them in case_policies.
create table case_policy_defaults (
    type               text not null,
    priority           text not null,
    respond_within     interval not null check (respond_within > interval '0'),
    resolve_within     interval not null check (resolve_within > interval '0'),
    primary key (type, priority),
    check (type in ('delay', 'damage', 'lost', 'address_issue', 'complaint', 'other')),
    check (priority in ('low', 'normal', 'high', 'urgent'))
);
insert into case_policy_defaults (type, priority, respond_within, resolve_within)
select t.type, p.priority, p.respond_within, p.resolve_within
from (values ('delay'), ('damage'), ('lost'), ('address_issue'), ('complaint'), ('other')) as t (type)
cross join (values ('low', interval '24 hours', interval '7 days'),
                   ('normal', interval '8 hours', interval '3 days'),
                   ('high', interval '4 hours', interval '1 day'),
                   ('urgent', interval '1 hour', interval '8 hours')) as p (priority, respond_within, resolve_within);

create table case_policies (
    account_id      text not null references accounts (id),
    type            text not null,
    priority        text not null,
    respond_within  interval not null check (respond_within > interval '0'),
    resolve_within  interval not null check (resolve_within > interval '0'),
    primary key (account_id, type, priority),
    foreign key (type, priority) references case_policy_defaults (type, priority)
);

-- Which triggers open a case on their own, and of which type and priority.
-- No row: the trigger opens nothing for that account. A null type: the type
-- the trigger suggests (delay for late, complaint for low_rating, ...).
create table case_auto_open (
    account_id  text not null references accounts (id),
    trigger     text not null check (trigger in ('late', 'exception', 'low_rating')),
    type        text check (type in ('delay', 'damage', 'lost', 'address_issue', 'complaint', 'other')),
    priority    text not null default 'normal' check (priority in ('low', 'normal', 'high', 'urgent')),
    primary key (account_id, trigger)
);

create table cases (
    id                      text primary key,
    account_id              text not null references accounts (id),
    -- null: the case is about the account, not one shipment
    shipment_id             text references shipments (id),
    type                    text not null,
    priority                text not null,
    status                  text not null default 'open'
                            check (status in ('open', 'in_progress', 'waiting_on_customer', 'resolved', 'closed')),
    subject                 text not null check (length(subject) between 1 and 500),
    assignee_key            text references api_keys (id),
    -- a key id, or the trigger that opened it on its own: late, exception, low_rating
    opened_by               text not null,
    opened_at               timestamptz not null,
    first_response_at       timestamptz,
    resolved_at             timestamptz,
    closed_at               timestamptz,
    response_due            timestamptz not null,
    resolution_due          timestamptz not null,
    response_breached_at    timestamptz,
    resolution_breached_at  timestamptz,
    updated_at              timestamptz not null,
    version                 integer not null default 1,
    foreign key (type, priority) references case_policy_defaults (type, priority),
    -- the deadline nearest to breach, for the queue's order: null once nothing is pending
    next_due                timestamptz generated always as (
        case when status in ('resolved', 'closed') then null
             else least(case when first_response_at is null then response_due end, resolution_due) end
    ) stored
);

-- An automatic case opens once per shipment and trigger, however often the
-- trigger fires or its transaction is retried.
create unique index cases_automatic_once on cases (shipment_id, opened_by)
    where opened_by in ('late', 'exception', 'low_rating');

-- The queue: nearest deadline first, then id, for keyset pagination.
create index cases_queue on cases (next_due, id);
create index cases_account on cases (account_id, id);
create index cases_shipment on cases (shipment_id) where shipment_id is not null;
create index cases_assignee on cases (assignee_key, next_due) where assignee_key is not null;

-- The sweep's two due queries walk these partial indexes; their predicates are
-- repeated word for word in api/deadlines/cases.py.
create index cases_response_pending on cases (response_due)
    where first_response_at is null and response_breached_at is null and status not in ('resolved', 'closed');
create index cases_resolution_pending on cases (resolution_due)
    where resolution_breached_at is null and status not in ('resolved', 'closed');

create table case_comments (
    id          text primary key,
    case_id     text not null references cases (id),
    author_key  text not null references api_keys (id),
    body        text not null check (length(body) between 1 and 10000),
    created_at  timestamptz not null
);
create index case_comments_case on case_comments (case_id, id);

-- A case on an account has no shipment: the change log takes such changes.
alter table changes alter column shipment_id drop not null;

insert into change_kinds (kind) values
    ('case_opened'), ('case_status_changed'), ('case_assigned'), ('case_breached');
