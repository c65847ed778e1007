-- A switch-traffic release names the rollback or restore into the recovery
-- environment whose result it moves users to.
ALTER TABLE relbot_releases ADD COLUMN switch_to text NOT NULL DEFAULT '';
