-- A deploy records whether its requester chose to go on with plugins the
-- target did not have (deploy --allow-new-plugins, or Slack's confirmation).
ALTER TABLE relbot_releases ADD COLUMN allow_new_plugins boolean NOT NULL DEFAULT false;
