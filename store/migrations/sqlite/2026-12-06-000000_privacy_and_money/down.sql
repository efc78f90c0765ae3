ALTER TABLE team_repos DROP COLUMN frozen;
DROP TABLE admin_sessions;
DROP INDEX webhook_deliveries_digest;
ALTER TABLE webhook_deliveries DROP COLUMN body_digest;
ALTER TABLE repos DROP COLUMN forge_repo_id;
