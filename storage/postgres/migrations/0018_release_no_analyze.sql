-- A restore or full rollback records whether its requester chose to leave
-- the restored database without planner statistics (--no-analyze).
ALTER TABLE relbot_releases ADD COLUMN no_analyze boolean NOT NULL DEFAULT false;
