-- A deploy keeps the change summary its request showed approvers (what the
-- migration changes in the app's own terms, against the target as it was).
ALTER TABLE relbot_releases ADD COLUMN changes jsonb;
