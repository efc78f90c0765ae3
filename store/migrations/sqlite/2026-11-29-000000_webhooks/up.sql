-- Webhooks. A delivery is recorded once per (provider, delivery id): a redelivery or a replay
-- finds the row and does nothing. Rows older than 30 days (GitHub's redelivery window) are
-- pruned. Deliveries with a bad signature are never recorded, only counted.
CREATE TABLE webhook_deliveries (
    provider     TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    event        TEXT NOT NULL,
    repo_id      TEXT,
    outcome      TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (provider, delivery_id)
);
CREATE INDEX webhook_deliveries_repo ON webhook_deliveries(repo_id, received_at);
CREATE INDEX webhook_deliveries_time ON webhook_deliveries(received_at);

-- Hooks this server registered on a forge for one repository (an OAuth App setup, where the
-- signed-in user may administer it). The hook's secret is derived from the webhook secret and
-- the repository id, so none is stored.
CREATE TABLE webhook_registrations (
    repo_id     TEXT NOT NULL,
    provider    TEXT NOT NULL,
    hook_id     BIGINT NOT NULL,
    user_id     TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (repo_id, provider)
);
CREATE UNIQUE INDEX webhook_registrations_hook ON webhook_registrations(provider, hook_id);

-- A repository renamed or transferred on its forge keeps its id (shared links keep working)
-- and is found by its new URL.
CREATE INDEX repos_canonical_url ON repos(canonical_url);
