-- What only the forge may say, and what replays must not repeat.
--
-- The forge's own id of a repository (GitHub's and GitLab's number, Bitbucket's uuid), learnt
-- the first time the forge describes it: a rename, a transfer or a visibility change is
-- followed only when the forge's answer names the same repository, so a new repository made at
-- a renamed one's old name is never mistaken for it.
ALTER TABLE repos ADD COLUMN forge_repo_id TEXT;

-- A delivery is recognised by its body's digest as well as its delivery id: the id header is
-- not covered by the signature, so a captured delivery replayed under a new id is the same
-- body.
ALTER TABLE webhook_deliveries ADD COLUMN body_digest TEXT;
CREATE UNIQUE INDEX webhook_deliveries_digest ON webhook_deliveries(provider, body_digest);

-- Admin sign-ins: random, server-side and revocable. The cookie carries the id; the table
-- holds its SHA-256 only.
CREATE TABLE admin_sessions (
    id_hash     TEXT PRIMARY KEY NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

-- A team's list over its plan (after a downgrade) is frozen least recently viewed first, as a
-- user's tracked repositories are: not kept fresh on the team's account until it has room.
ALTER TABLE team_repos ADD COLUMN frozen BOOLEAN NOT NULL DEFAULT FALSE;
