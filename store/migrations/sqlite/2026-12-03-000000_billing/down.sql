ALTER TABLE repo_access DROP COLUMN frozen;
DROP TABLE stripe_events;
DROP TABLE subscriptions;
