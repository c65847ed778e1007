-- Variables and secrets per app and environment. A plain variable has a
-- value; a secret has only its AES-256-GCM ciphertext and the id of the
-- key that sealed it (release.KeyID), never its value.
CREATE TABLE relbot_variables (
    app        text        NOT NULL,
    env        text        NOT NULL,
    name       text        NOT NULL,
    secret     boolean     NOT NULL,
    value      text,
    ciphertext bytea,
    key_id     text,
    updated_by text        NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (app, env, name),
    CONSTRAINT relbot_variables_kind CHECK (
        (secret AND value IS NULL AND ciphertext IS NOT NULL AND key_id IS NOT NULL)
        OR (NOT secret AND value IS NOT NULL AND ciphertext IS NULL AND key_id IS NULL))
);
