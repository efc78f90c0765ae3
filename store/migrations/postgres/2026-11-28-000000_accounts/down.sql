ALTER TABLE repo_access DROP COLUMN checked_at;
DROP TABLE sessions;
ALTER TABLE users DROP COLUMN token_kind;
ALTER TABLE users DROP COLUMN refresh_expires_at;
ALTER TABLE users DROP COLUMN token_expires_at;
ALTER TABLE users DROP COLUMN refresh_token;
