-- Teams: a shared repository list and a plan of their own (owner `team:<id>` in
-- subscriptions, seats = the subscription's quantity). A team never widens what a member may
-- read: a private repository on its list is shown to a member only when their own forge
-- account can read it.
CREATE TABLE teams (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    plan        TEXT NOT NULL DEFAULT 'free',
    created_by  TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE team_members (
    team_id    TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- 'owner' or 'member'.
    role       TEXT NOT NULL,
    joined_at  BIGINT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members(user_id);

-- An invitation: by link (anyone signed in who has it), or for one forge login. The link
-- carries the id signed with GITVISTA_JWT_SECRET; each is used once and expires.
CREATE TABLE team_invites (
    id          TEXT PRIMARY KEY NOT NULL,
    team_id     TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    created_by  TEXT NOT NULL,
    role        TEXT NOT NULL DEFAULT 'member',
    provider    TEXT,
    login       TEXT,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    used_by     TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX team_invites_team ON team_invites(team_id);

CREATE TABLE team_repos (
    team_id   TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    repo_id   TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    added_by  TEXT,
    added_at  BIGINT NOT NULL,
    PRIMARY KEY (team_id, repo_id)
);

-- Who did what: team changes, invitations, plans. Shown to team owners (their team's) and
-- admins (all).
CREATE TABLE audit_events (
    id        TEXT PRIMARY KEY NOT NULL,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    team_id   TEXT,
    action    TEXT NOT NULL,
    target    TEXT,
    detail    TEXT
);
CREATE INDEX audit_events_team ON audit_events(team_id, at);
CREATE INDEX audit_events_at ON audit_events(at);
