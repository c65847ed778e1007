-- A deploy records the release snapshot its apply kept in the target (a
-- targeted rollback puts it back); a targeted rollback, the one it puts back.
ALTER TABLE relbot_releases ADD COLUMN snapshot text NOT NULL DEFAULT '';
