-- Migration files made from development: the file itself is an artifact;
-- this is its record and the log of every apply.
CREATE TABLE relbot_migrations (
    id          text PRIMARY KEY,
    app         text NOT NULL,
    source_env  text NOT NULL,
    version     text NOT NULL DEFAULT '',
    note        text NOT NULL DEFAULT '',
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    artifact    text NOT NULL,
    size        bigint NOT NULL,
    sha256      text NOT NULL,
    summary     jsonb NOT NULL
);
CREATE INDEX relbot_migrations_app ON relbot_migrations (app, created_at DESC);

CREATE TABLE relbot_migration_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    migration   text NOT NULL REFERENCES relbot_migrations (id),
    env         text NOT NULL,
    by_user     text NOT NULL,
    started_at  timestamptz NOT NULL,
    ok          boolean NOT NULL,
    error       text NOT NULL DEFAULT '',
    result      jsonb
);
CREATE INDEX relbot_migration_runs_migration ON relbot_migration_runs (migration, started_at);
