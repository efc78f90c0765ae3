DROP TABLE repo_regions;
ALTER TABLE nodes DROP COLUMN machine_id;
ALTER TABLE nodes DROP COLUMN region;
