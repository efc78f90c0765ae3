-- Accounts. Forge tokens are ciphertexts only (src/auth/cipher.rs: key id, nonce, AES-256-GCM
-- under GITVISTA_ENCRYPTION_KEY, bound to the user id); a session is a row, so signing out,
-- "sign out everywhere" and an admin's revoke end it at once.
ALTER TABLE users ADD COLUMN refresh_token BLOB;
ALTER TABLE users ADD COLUMN token_expires_at BIGINT;
ALTER TABLE users ADD COLUMN refresh_expires_at BIGINT;
-- 'app' (a GitHub App's expiring user token) or 'oauth' (an OAuth App's).
ALTER TABLE users ADD COLUMN token_kind TEXT NOT NULL DEFAULT 'oauth';

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX sessions_user ON sessions(user_id);

-- When the user's own token last showed GitHub letting them read the repository.
ALTER TABLE repo_access ADD COLUMN checked_at BIGINT;
