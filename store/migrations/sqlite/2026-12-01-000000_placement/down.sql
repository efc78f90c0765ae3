ALTER TABLE nodes DROP COLUMN viewers;
ALTER TABLE nodes DROP COLUMN sessions;
ALTER TABLE nodes DROP COLUMN free_bytes;
DROP INDEX repos_owner;
ALTER TABLE repos DROP COLUMN epoch;
ALTER TABLE repos DROP COLUMN owner;
