-- Releases: deploys, rollbacks and restores of one environment, with their
-- approvals, steps and validation results; manual holds; and the locks and
-- dedupe keys a relbot without Redis shares between its processes.
-- Optional text columns are '' rather than NULL, as in release.Release.
CREATE TABLE relbot_releases (
    id           text        PRIMARY KEY,
    app          text        NOT NULL,
    env          text        NOT NULL,
    kind         text        NOT NULL,
    migration    text        NOT NULL DEFAULT '',
    file_hash    text        NOT NULL DEFAULT '',
    backup       text        NOT NULL DEFAULT '',
    rollback_of  text        NOT NULL DEFAULT '',
    requested_by text        NOT NULL,
    requested_at timestamptz NOT NULL,
    at           timestamptz,
    state        text        NOT NULL,
    reason       text        NOT NULL DEFAULT '',
    lease_owner  text        NOT NULL DEFAULT '',
    lease_until  timestamptz,
    channel      text        NOT NULL DEFAULT '',
    message_ts   text        NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- At most one open release per environment (release.State.Open), however
-- many processes request one at the same time. The list of states must
-- match State.Open; a test holds them together.
CREATE UNIQUE INDEX relbot_releases_one_open ON relbot_releases (app, env)
    WHERE state IN ('awaiting approval', 'scheduled', 'running', 'interrupted');

-- release list APP [ENV], newest first.
CREATE INDEX relbot_releases_app_env_requested_idx
    ON relbot_releases (app, env, requested_at DESC);

-- Restart recovery: running releases whose lease ran out.
CREATE INDEX relbot_releases_running_lease_idx
    ON relbot_releases (lease_until) WHERE state = 'running';

-- One row per person: a second approval by the same person is not counted.
CREATE TABLE relbot_release_approvals (
    release  text        NOT NULL REFERENCES relbot_releases (id) ON DELETE CASCADE,
    approver text        NOT NULL,
    at       timestamptz NOT NULL,
    PRIMARY KEY (release, approver)
);

CREATE TABLE relbot_release_steps (
    release text        NOT NULL REFERENCES relbot_releases (id) ON DELETE CASCADE,
    idx     int         NOT NULL,
    name    text        NOT NULL,
    state   text        NOT NULL,
    started timestamptz,
    ended   timestamptz,
    log     text        NOT NULL DEFAULT '',
    PRIMARY KEY (release, idx)
);

CREATE TABLE relbot_release_checks (
    release     text             NOT NULL REFERENCES relbot_releases (id) ON DELETE CASCADE,
    idx         int              NOT NULL,
    name        text             NOT NULL,
    ok          boolean          NOT NULL,
    -- Fractional milliseconds: a time.Duration round-trips to the nanosecond.
    duration_ms double precision NOT NULL,
    detail      text             NOT NULL DEFAULT '',
    PRIMARY KEY (release, idx)
);

-- Manual holds (lock APP ENV REASON / unlock).
CREATE TABLE relbot_holds (
    app     text        NOT NULL,
    env     text        NOT NULL,
    reason  text        NOT NULL,
    by_user text        NOT NULL,
    at      timestamptz NOT NULL,
    PRIMARY KEY (app, env)
);

-- release.Locker without Redis. Expiry uses the database's clock, so every
-- process sharing the bot's database agrees on it. A row whose until has
-- passed is free.
CREATE TABLE relbot_locks (
    key   text        PRIMARY KEY,
    owner text        NOT NULL,
    token text        NOT NULL,
    since timestamptz NOT NULL,
    until timestamptz NOT NULL
);

-- Dedupe keys without Redis (retried Slack requests, double clicks).
CREATE TABLE relbot_dedupe (
    key   text        PRIMARY KEY,
    until timestamptz NOT NULL
);
