-- When a backup's checksums were last read back and matched (a release's
-- pre-release backup is checked so before its apply), apart from a full
-- verify (verified_at).
ALTER TABLE relbot_backups ADD COLUMN checked_at timestamptz;
