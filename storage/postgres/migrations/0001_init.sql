-- The bot's own records. Every table is prefixed relbot_ so the bot can share
-- a database with other things. Later files add releases, approvals,
-- versions, migrations and variables; never edit a file once released.

-- Short, typable IDs (crm-b12): one counter per app and kind ("b", "r", ...).
CREATE TABLE relbot_ids (
    app  text   NOT NULL,
    kind text   NOT NULL,
    last bigint NOT NULL,
    PRIMARY KEY (app, kind)
);

CREATE TABLE relbot_backups (
    id          text        PRIMARY KEY,
    app         text        NOT NULL,
    env         text        NOT NULL,
    kind        text        NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL,
    artifact    text        NOT NULL,
    size        bigint      NOT NULL,
    sha256      text        NOT NULL,
    -- release.BackupSummary as JSON: it grows with the engine, the table need not.
    manifest    jsonb       NOT NULL,
    verified_at timestamptz,
    -- Set on pre-release backups. No foreign key yet: relbot_releases comes
    -- in a later migration, which can add the constraint.
    release_id  text
);

-- backup list APP ENV, newest first; also retention (keep N per env).
CREATE INDEX relbot_backups_app_env_created_idx
    ON relbot_backups (app, env, created_at DESC);
