-- Billing through Stripe. A subscription row holds Stripe's own state of one subscription, as
-- the latest event about it said: events repeat and arrive out of order, so each change is
-- applied only when its event is newer (`state_at`, `invoice_at`: the events' `created`) and a
-- terminal status (canceled, incomplete_expired) is never left. `owner` is `user:<id>` (or,
-- with teams, `team:<id>`), from the Checkout Session's client_reference_id or the
-- subscription's metadata, whichever arrives first.
CREATE TABLE subscriptions (
    id                  TEXT PRIMARY KEY NOT NULL,
    owner               TEXT,
    customer_id         TEXT,
    status              TEXT NOT NULL,
    price_id            TEXT,
    quantity            BIGINT NOT NULL DEFAULT 1,
    current_period_end  BIGINT,
    -- When an unpaid invoice first failed (the grace period runs from it); cleared when one is
    -- paid.
    payment_failed_at   BIGINT,
    state_at            BIGINT NOT NULL DEFAULT 0,
    invoice_at          BIGINT NOT NULL DEFAULT 0,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX subscriptions_owner ON subscriptions(owner);
CREATE INDEX subscriptions_customer ON subscriptions(customer_id);

-- Each Stripe event is handled once.
CREATE TABLE stripe_events (
    id           TEXT PRIMARY KEY NOT NULL,
    type         TEXT NOT NULL,
    created      BIGINT NOT NULL,
    received_at  BIGINT NOT NULL
);

-- Over its owner's plan: the repository stays (nothing is deleted) but is not refreshed for
-- them until they choose to keep it (or upgrade).
ALTER TABLE repo_access ADD COLUMN frozen BOOLEAN NOT NULL DEFAULT FALSE;
