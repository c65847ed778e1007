-- Versions: checkpoints of an app's source configuration. Rows live in
-- content-addressed blobs in the artifact store; this is the record that
-- lists, per table, which blob holds its rows and the table's structure.
CREATE TABLE relbot_versions (
    id           text PRIMARY KEY,
    app          text NOT NULL,
    env          text NOT NULL,
    description  text NOT NULL,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL,
    auto         boolean NOT NULL DEFAULT false,
    core_version text NOT NULL DEFAULT '',
    plugins      jsonb,
    tables       jsonb NOT NULL
);
CREATE INDEX relbot_versions_app ON relbot_versions (app, created_at DESC);
