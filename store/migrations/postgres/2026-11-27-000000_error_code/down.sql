ALTER TABLE repos DROP COLUMN error_code;
