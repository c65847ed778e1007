-- Every kind of object SQL alone can make on PostgreSQL 15, each with a
-- comment where it takes one. {{owner}} and {{reader}} are replaced by roles made
-- for the test.
CREATE EXTENSION IF NOT EXISTS citext;
COMMENT ON EXTENSION citext IS 'case-insensitive text';
CREATE SCHEMA app;
COMMENT ON SCHEMA app IS 'the app''s schema';
CREATE SCHEMA reports AUTHORIZATION {{owner}};
GRANT USAGE ON SCHEMA reports TO {{reader}};

-- Collations, conversions, text search.
CREATE COLLATION app.bytewise FROM "C";
COMMENT ON COLLATION app.bytewise IS 'byte order';
CREATE CONVERSION app.latin_to_utf8 FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8;
COMMENT ON CONVERSION app.latin_to_utf8 IS 'a conversion';
CREATE TEXT SEARCH PARSER app.prs (START = prsd_start, GETTOKEN = prsd_nexttoken, END = prsd_end, LEXTYPES = prsd_lextype, HEADLINE = prsd_headline);
COMMENT ON TEXT SEARCH PARSER app.prs IS 'a parser';
CREATE TEXT SEARCH TEMPLATE app.tmpl (INIT = dsimple_init, LEXIZE = dsimple_lexize);
COMMENT ON TEXT SEARCH TEMPLATE app.tmpl IS 'a template';
CREATE TEXT SEARCH DICTIONARY app.dict (TEMPLATE = app.tmpl, STOPWORDS = english);
COMMENT ON TEXT SEARCH DICTIONARY app.dict IS 'a dictionary';
CREATE TEXT SEARCH CONFIGURATION app.cfg (PARSER = app.prs);
ALTER TEXT SEARCH CONFIGURATION app.cfg ADD MAPPING FOR word, asciiword WITH app.dict, simple;
COMMENT ON TEXT SEARCH CONFIGURATION app.cfg IS 'a configuration';

-- Types: shell and base, range, enum, composite, domains.
CREATE TYPE app.myint;
CREATE FUNCTION app.myint_in(cstring) RETURNS app.myint LANGUAGE internal IMMUTABLE STRICT AS 'int4in';
CREATE FUNCTION app.myint_out(app.myint) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'int4out';
CREATE TYPE app.myint (INPUT = app.myint_in, OUTPUT = app.myint_out, LIKE = int4, CATEGORY = 'N');
COMMENT ON TYPE app.myint IS 'a base type';
CREATE CAST (app.myint AS int4) WITHOUT FUNCTION AS IMPLICIT;
CREATE CAST (int4 AS app.myint) WITHOUT FUNCTION;
COMMENT ON CAST (app.myint AS int4) IS 'a cast';
CREATE TYPE app.floatrange AS RANGE (SUBTYPE = float8, SUBTYPE_DIFF = float8mi);
COMMENT ON TYPE app.floatrange IS 'a range';
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
COMMENT ON TYPE app.mood IS 'an enum';
CREATE TYPE app.person_t AS (name text, born date);
COMMENT ON TYPE app.person_t IS 'a composite';
COMMENT ON COLUMN app.person_t.born IS 'an attribute';
CREATE FUNCTION app.is_even(integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT $1 % 2 = 0 $$;
CREATE DOMAIN app.even AS integer CONSTRAINT even_check CHECK (app.is_even(VALUE));
COMMENT ON DOMAIN app.even IS 'a domain with a function check';
COMMENT ON CONSTRAINT even_check ON DOMAIN app.even IS 'a domain constraint';
CREATE DOMAIN app.small AS integer DEFAULT 1 NOT NULL;
ALTER DOMAIN app.small ADD CONSTRAINT small_check CHECK (VALUE < 100) NOT VALID;

-- Operators, operator families and classes, aggregates, functions.
CREATE FUNCTION app.abs_lt(integer, integer) RETURNS boolean LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT abs($1) < abs($2) $$;
CREATE FUNCTION app.abs_le(integer, integer) RETURNS boolean LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT abs($1) <= abs($2) $$;
CREATE FUNCTION app.abs_eq(integer, integer) RETURNS boolean LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT abs($1) = abs($2) $$;
CREATE FUNCTION app.abs_ge(integer, integer) RETURNS boolean LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT abs($1) >= abs($2) $$;
CREATE FUNCTION app.abs_gt(integer, integer) RETURNS boolean LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT abs($1) > abs($2) $$;
CREATE FUNCTION app.abs_cmp(integer, integer) RETURNS integer LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT sign(abs($1) - abs($2))::int $$;
CREATE OPERATOR app.##< (LEFTARG = integer, RIGHTARG = integer, FUNCTION = app.abs_lt);
CREATE OPERATOR app.##<= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = app.abs_le);
CREATE OPERATOR app.##= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = app.abs_eq, COMMUTATOR = OPERATOR(app.##=));
CREATE OPERATOR app.##>= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = app.abs_ge);
CREATE OPERATOR app.##> (LEFTARG = integer, RIGHTARG = integer, FUNCTION = app.abs_gt);
COMMENT ON OPERATOR app.##= (integer, integer) IS 'an operator';
CREATE OPERATOR FAMILY app.abs_fam USING btree;
COMMENT ON OPERATOR FAMILY app.abs_fam USING btree IS 'an operator family';
CREATE OPERATOR CLASS app.abs_ops FOR TYPE integer USING btree FAMILY app.abs_fam AS
    OPERATOR 1 app.##<, OPERATOR 2 app.##<=, OPERATOR 3 app.##=, OPERATOR 4 app.##>=, OPERATOR 5 app.##>,
    FUNCTION 1 app.abs_cmp(integer, integer);
COMMENT ON OPERATOR CLASS app.abs_ops USING btree IS 'an operator class';
CREATE AGGREGATE app.total(integer) (SFUNC = int4pl, STYPE = integer, INITCOND = '0');
COMMENT ON AGGREGATE app.total(integer) IS 'an aggregate';
CREATE FUNCTION app.series(integer, integer) RETURNS SETOF integer LANGUAGE internal IMMUTABLE STRICT
    SUPPORT generate_series_int4_support AS 'generate_series_int4';
COMMENT ON FUNCTION app.series(integer, integer) IS 'a function with a support function';
CREATE PROCEDURE app.touch(INOUT n integer) LANGUAGE plpgsql AS $$ BEGIN n := n + 1; END $$;
COMMENT ON PROCEDURE app.touch(integer) IS 'a procedure';
CREATE FUNCTION app.stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.note := coalesce(NEW.note, 'stamped; ''quoted'' $x$'); RETURN NEW; END $$;

-- Table access methods, compression and storage.
CREATE ACCESS METHOD heap2 TYPE TABLE HANDLER heap_tableam_handler;
COMMENT ON ACCESS METHOD heap2 IS 'an access method';
CREATE TABLE app.blobs (id integer PRIMARY KEY, body text COMPRESSION pglz, raw bytea, pad text) USING heap2;
ALTER TABLE app.blobs ALTER COLUMN raw SET STORAGE EXTERNAL, ALTER COLUMN pad SET STORAGE MAIN, ALTER COLUMN pad SET STATISTICS 500;
COMMENT ON TABLE app.blobs IS 'a table of another access method';

-- Sequences.
CREATE UNLOGGED SEQUENCE app.unlogged_seq START 7 INCREMENT 3;
COMMENT ON SEQUENCE app.unlogged_seq IS 'an unlogged sequence';
CREATE SEQUENCE app.ticket_no AS smallint MINVALUE -10 MAXVALUE 1000 START -5 CYCLE;

-- Partitioned tables, several levels, with keys and foreign keys to them.
CREATE TABLE app.orders (id integer NOT NULL, region text NOT NULL, placed date NOT NULL, total numeric(10,2), mood app.mood,
    PRIMARY KEY (id, region)) PARTITION BY LIST (region);
COMMENT ON TABLE app.orders IS 'a partitioned table';
CREATE TABLE app.orders_eu PARTITION OF app.orders FOR VALUES IN ('eu') PARTITION BY HASH (id);
CREATE TABLE app.orders_eu_0 PARTITION OF app.orders_eu FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE app.orders_eu_1 PARTITION OF app.orders_eu FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE app.orders_us PARTITION OF app.orders FOR VALUES IN ('us');
CREATE TABLE app.orders_other PARTITION OF app.orders DEFAULT;
CREATE INDEX orders_placed_idx ON app.orders (placed);
COMMENT ON INDEX app.orders_placed_idx IS 'a partitioned index';
CREATE TABLE app.order_lines (id bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 100) PRIMARY KEY, order_id integer NOT NULL, region text NOT NULL,
    qty app.even, FOREIGN KEY (order_id, region) REFERENCES app.orders ON DELETE CASCADE);
CREATE TABLE app.shipments (order_id integer, region text, at timestamptz, CONSTRAINT shipments_order_fk FOREIGN KEY (order_id, region) REFERENCES app.orders)
    PARTITION BY HASH (order_id);
CREATE TABLE app.shipments_0 PARTITION OF app.shipments FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE app.shipments_1 PARTITION OF app.shipments FOR VALUES WITH (MODULUS 2, REMAINDER 1);
COMMENT ON CONSTRAINT shipments_order_fk ON app.shipments IS 'a foreign key between partitioned tables';

-- Inheritance: several levels and several parents.
CREATE TABLE app.things (id integer, note text, CONSTRAINT things_id_check CHECK (id > 0));
CREATE TABLE app.tools (weight real) INHERITS (app.things);
CREATE TABLE app.hammers (head text) INHERITS (app.tools);
CREATE TABLE app.labels (label text DEFAULT 'none');
CREATE TABLE app.tagged_tools (since date) INHERITS (app.tools, app.labels);
COMMENT ON TABLE app.tagged_tools IS 'two parents';
ALTER TABLE app.things ADD CONSTRAINT things_note_check CHECK (note <> '') NOT VALID;

-- Typed tables, functions over a table's row type, generated columns.
CREATE TABLE app.people OF app.person_t (PRIMARY KEY (name), born WITH OPTIONS DEFAULT '2000-01-01');
COMMENT ON TABLE app.people IS 'a typed table';
CREATE FUNCTION app.age(app.people) RETURNS integer LANGUAGE sql STABLE AS $$ SELECT extract(year FROM age(DATE '2026-01-01', $1.born))::int $$;
CREATE TABLE app.accounts (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email public.citext UNIQUE,
    owner_name text COLLATE app.bytewise,
    balance app.small,
    span app.floatrange,
    score app.myint,
    doubled integer GENERATED ALWAYS AS (id * 2) STORED,
    note text,
    EXCLUDE USING gist (span WITH &&)
);
COMMENT ON TABLE app.accounts IS 'accounts';
COMMENT ON COLUMN app.accounts.email IS 'a column';
CREATE INDEX accounts_abs_idx ON app.accounts (id app.abs_ops);
CREATE UNIQUE INDEX accounts_lower_idx ON app.accounts (lower(owner_name)) WHERE note IS NOT NULL;
COMMENT ON INDEX app.accounts_lower_idx IS 'an index';
CREATE TRIGGER accounts_stamp BEFORE INSERT OR UPDATE ON app.accounts FOR EACH ROW EXECUTE FUNCTION app.stamp();
COMMENT ON TRIGGER accounts_stamp ON app.accounts IS 'a trigger';
CREATE TRIGGER accounts_off BEFORE DELETE ON app.accounts FOR EACH ROW EXECUTE FUNCTION app.stamp();
ALTER TABLE app.accounts DISABLE TRIGGER accounts_off;
CREATE CONSTRAINT TRIGGER accounts_check AFTER INSERT ON app.accounts DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION app.stamp();
CREATE STATISTICS app.accounts_stats (ndistinct, dependencies) ON owner_name, note FROM app.accounts;
ALTER STATISTICS app.accounts_stats SET STATISTICS 400;
COMMENT ON STATISTICS app.accounts_stats IS 'extended statistics';
CREATE UNLOGGED TABLE app.scratch (k text PRIMARY KEY, v jsonb) WITH (fillfactor = 70);
CLUSTER app.scratch USING scratch_pkey;
ALTER TABLE app.scratch REPLICA IDENTITY FULL;

-- Row security and policies.
ALTER TABLE app.accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY accounts_read ON app.accounts FOR SELECT TO {{reader}} USING (note IS DISTINCT FROM 'hidden');
CREATE POLICY accounts_write ON app.accounts AS RESTRICTIVE FOR UPDATE USING (true) WITH CHECK (balance < 50);
COMMENT ON POLICY accounts_read ON app.accounts IS 'a policy';

-- Views, rules, materialized views.
CREATE VIEW app.account_notes WITH (security_barrier) AS SELECT id, note FROM app.accounts WHERE note IS NOT NULL WITH CHECK OPTION;
COMMENT ON VIEW app.account_notes IS 'a view';
CREATE TABLE app.audit (at timestamptz DEFAULT now(), what text);
CREATE VIEW app.audit_entry AS SELECT what FROM app.audit;
CREATE RULE audit_insert AS ON INSERT TO app.audit_entry DO INSTEAD INSERT INTO app.audit (at, what) VALUES ('2026-01-01', NEW.what);
COMMENT ON RULE audit_insert ON app.audit_entry IS 'a rule';
CREATE RULE things_no_delete AS ON DELETE TO app.things DO INSTEAD NOTHING;
CREATE MATERIALIZED VIEW app.order_totals AS SELECT region, sum(total) AS total FROM app.orders GROUP BY region;
CREATE UNIQUE INDEX order_totals_region ON app.order_totals (region);
COMMENT ON MATERIALIZED VIEW app.order_totals IS 'a materialized view';
CREATE RECURSIVE VIEW app.numbers (n) AS SELECT 1 UNION ALL SELECT n + 1 FROM numbers WHERE n < 5;

-- Foreign data: wrapper, server, user mapping, foreign table.
CREATE FOREIGN DATA WRAPPER nowhere;
COMMENT ON FOREIGN DATA WRAPPER nowhere IS 'a wrapper';
CREATE SERVER faraway FOREIGN DATA WRAPPER nowhere OPTIONS (host 'example.invalid');
COMMENT ON SERVER faraway IS 'a server';
CREATE USER MAPPING FOR {{reader}} SERVER faraway OPTIONS (user 'remote');
CREATE FOREIGN TABLE app.remote_things (id integer, name text) SERVER faraway OPTIONS (table_name 'things');
COMMENT ON FOREIGN TABLE app.remote_things IS 'a foreign table';

-- Publications, event triggers.
CREATE PUBLICATION orders_pub FOR TABLE app.orders, app.accounts (id, note) WHERE (id > 0) WITH (publish = 'insert, update', publish_via_partition_root = true);
COMMENT ON PUBLICATION orders_pub IS 'a publication';
CREATE PUBLICATION reports_pub FOR TABLES IN SCHEMA reports;
CREATE FUNCTION app.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
CREATE EVENT TRIGGER quiet_ddl ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION app.on_ddl();
COMMENT ON EVENT TRIGGER quiet_ddl IS 'an event trigger';

-- Owners, grants, default privileges.
CREATE TABLE reports.daily (day date PRIMARY KEY, n integer);
ALTER TABLE reports.daily OWNER TO {{owner}};
ALTER FUNCTION app.age(app.people) OWNER TO {{owner}};
ALTER TYPE app.mood OWNER TO {{owner}};
GRANT SELECT, UPDATE (note) ON app.accounts TO {{reader}};
GRANT USAGE ON SCHEMA app TO {{reader}};
GRANT SELECT ON app.order_lines TO {{reader}} WITH GRANT OPTION;
SET ROLE {{reader}};
GRANT SELECT ON app.order_lines TO {{owner}};
RESET ROLE;
GRANT EXECUTE ON FUNCTION app.is_even(integer) TO {{reader}};
REVOKE EXECUTE ON FUNCTION app.abs_cmp(integer, integer) FROM PUBLIC;
GRANT USAGE ON SEQUENCE app.ticket_no TO {{reader}};
GRANT USAGE ON TYPE app.mood TO {{reader}};
GRANT USAGE ON FOREIGN SERVER faraway TO {{reader}};
ALTER DEFAULT PRIVILEGES FOR ROLE {{owner}} IN SCHEMA reports GRANT SELECT ON TABLES TO {{reader}};
ALTER DEFAULT PRIVILEGES FOR ROLE {{owner}} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES GRANT USAGE ON SEQUENCES TO {{reader}};

-- Rows, sequence values, large objects.
INSERT INTO app.orders VALUES (1, 'eu', '2025-03-01', 10.50, 'happy'), (2, 'eu', '2026-02-01', 3, 'sad'), (3, 'us', '2026-01-05', 7.25, NULL), (4, 'apac', '2026-01-06', 1, 'ok');
INSERT INTO app.order_lines (order_id, region, qty) VALUES (1, 'eu', 2), (2, 'eu', 4), (3, 'us', 6);
INSERT INTO app.shipments VALUES (1, 'eu', '2026-01-01 10:00+00'), (3, 'us', NULL);
INSERT INTO app.things VALUES (1, 'thing');
INSERT INTO app.tools VALUES (2, 'tool', 1.5);
INSERT INTO app.hammers VALUES (3, 'hammer', 2.5, 'steel');
INSERT INTO app.labels VALUES ('lonely label');
INSERT INTO app.tagged_tools VALUES (4, 'tagged', 0.5, 'red', '2026-01-01');
INSERT INTO app.people VALUES ('ada', '1815-12-10'), ('alan', DEFAULT);
INSERT INTO app.accounts (email, owner_name, balance, span, score, note) VALUES
    ('A@x.org', 'Zoë', 10, '[1.5,2.5)', '42', 'first'), ('b@x.org', 'bob', 20, '[3,4)', '-7', NULL), ('c@x.org', 'carl', 30, NULL, NULL, 'tab	and
newline');
INSERT INTO app.blobs VALUES (1, repeat('compressible ', 5000), decode(repeat('00ff', 5000), 'hex'), repeat('p', 3000));
INSERT INTO app.scratch VALUES ('k', '{"a": [1, 2, {"b": null}]}');
INSERT INTO app.audit_entry VALUES ('through a rule');
INSERT INTO reports.daily VALUES ('2026-01-01', 5);
SELECT setval('app.unlogged_seq', 40);
SELECT setval('app.ticket_no', 12, false);
REFRESH MATERIALIZED VIEW app.order_totals;
DO $$
DECLARE o oid;
BEGIN
    o := lo_from_bytea(0, decode(repeat('0123456789abcdef', 4000), 'hex'));
    EXECUTE format('COMMENT ON LARGE OBJECT %s IS %L', o, 'a large object');
    EXECUTE format('GRANT SELECT ON LARGE OBJECT %s TO %I', o, '{{reader}}');
    PERFORM lo_from_bytea(0, '');
END $$;
