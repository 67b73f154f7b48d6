-- The kinds of change are rows, not a CHECK: each capability's migration adds its
-- own kinds (insert into change_kinds ...) without restating, and so without
-- dropping, the kinds another migration added. The foreign key refuses a kind no
-- migration declared, as the CHECK did.
create table change_kinds (
    kind  text primary key check (kind ~ '^[a-z][a-z_]{0,39}$')
);
insert into change_kinds (kind) values ('created'), ('event'), ('promise_revised'), ('late'), ('at_risk');

alter table changes drop constraint changes_kind_check;
alter table changes add constraint changes_kind_fkey foreign key (kind) references change_kinds (kind);
