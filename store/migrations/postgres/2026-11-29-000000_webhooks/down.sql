DROP INDEX repos_canonical_url;
DROP TABLE webhook_registrations;
DROP TABLE webhook_deliveries;
