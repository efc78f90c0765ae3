//! The tables (written by hand; both migration sets create exactly these).

diesel::table! {
    users (id) {
        id -> Text,
        login -> Text,
        email -> Nullable<Text>,
        display_name -> Nullable<Text>,
        avatar_url -> Nullable<Text>,
        plan -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    oauth_connections (user_id, provider) {
        user_id -> Text,
        provider -> Text,
        forge_user_id -> Text,
        login -> Text,
        access_token -> Binary,
        refresh_token -> Nullable<Binary>,
        token_expires_at -> Nullable<BigInt>,
        refresh_expires_at -> Nullable<BigInt>,
        token_kind -> Text,
        scopes -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        last_seen_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    repos (id) {
        id -> Text,
        canonical_url -> Text,
        display_url -> Text,
        is_private -> Bool,
        state -> Text,
        error_message -> Nullable<Text>,
        progress -> Nullable<Text>,
        disk_bytes -> BigInt,
        commit_count -> BigInt,
        last_fetch_at -> Nullable<BigInt>,
        last_access_at -> Nullable<BigInt>,
        created_at -> BigInt,
        error_code -> Nullable<Text>,
        owner -> Nullable<Text>,
        epoch -> BigInt,
        forge_repo_id -> Nullable<Text>,
    }
}

diesel::table! {
    repo_regions (repo_id) {
        repo_id -> Text,
        region -> Text,
    }
}

diesel::table! {
    repo_access (repo_id, user_id) {
        repo_id -> Text,
        user_id -> Text,
        role -> Text,
        granted_at -> BigInt,
        checked_at -> Nullable<BigInt>,
        frozen -> Bool,
    }
}

diesel::table! {
    subscriptions (id) {
        id -> Text,
        owner -> Nullable<Text>,
        customer_id -> Nullable<Text>,
        status -> Text,
        price_id -> Nullable<Text>,
        quantity -> BigInt,
        current_period_end -> Nullable<BigInt>,
        payment_failed_at -> Nullable<BigInt>,
        state_at -> BigInt,
        invoice_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    stripe_events (id) {
        id -> Text,
        #[sql_name = "type"]
        kind -> Text,
        created -> BigInt,
        received_at -> BigInt,
    }
}

diesel::table! {
    jobs (id) {
        id -> Text,
        repo_id -> Text,
        kind -> Text,
        state -> Text,
        progress -> Nullable<Text>,
        started_at -> Nullable<BigInt>,
        finished_at -> Nullable<BigInt>,
        error_message -> Nullable<Text>,
        priority -> Integer,
        run_at -> BigInt,
        attempts -> Integer,
        max_attempts -> Integer,
        locked_by -> Nullable<Text>,
        lease_until -> Nullable<BigInt>,
        created_at -> BigInt,
        payload -> Nullable<Text>,
    }
}

diesel::table! {
    nodes (id) {
        id -> Text,
        role -> Text,
        internal_addr -> Nullable<Text>,
        started_at -> BigInt,
        heartbeat_at -> BigInt,
        free_bytes -> BigInt,
        sessions -> Integer,
        viewers -> Integer,
        region -> Nullable<Text>,
        machine_id -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_deliveries (provider, delivery_id) {
        provider -> Text,
        delivery_id -> Text,
        event -> Text,
        repo_id -> Nullable<Text>,
        outcome -> Text,
        received_at -> BigInt,
        body_digest -> Nullable<Text>,
    }
}

diesel::table! {
    admin_sessions (id_hash) {
        id_hash -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    webhook_registrations (repo_id, provider) {
        repo_id -> Text,
        provider -> Text,
        hook_id -> Text,
        user_id -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    teams (id) {
        id -> Text,
        name -> Text,
        plan -> Text,
        created_by -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    team_members (team_id, user_id) {
        team_id -> Text,
        user_id -> Text,
        role -> Text,
        joined_at -> BigInt,
    }
}

diesel::table! {
    team_invites (id) {
        id -> Text,
        team_id -> Text,
        created_by -> Text,
        role -> Text,
        provider -> Nullable<Text>,
        login -> Nullable<Text>,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        used_by -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    team_repos (team_id, repo_id) {
        team_id -> Text,
        repo_id -> Text,
        added_by -> Nullable<Text>,
        added_at -> BigInt,
        frozen -> Bool,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        at -> BigInt,
        actor -> Text,
        team_id -> Nullable<Text>,
        action -> Text,
        target -> Nullable<Text>,
        detail -> Nullable<Text>,
    }
}

diesel::joinable!(team_members -> teams (team_id));
diesel::joinable!(team_members -> users (user_id));
diesel::joinable!(team_repos -> teams (team_id));
diesel::joinable!(team_repos -> repos (repo_id));
diesel::joinable!(jobs -> repos (repo_id));
diesel::joinable!(repo_access -> repos (repo_id));
diesel::joinable!(repo_regions -> repos (repo_id));
diesel::joinable!(repo_access -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(oauth_connections -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    oauth_connections,
    repos,
    repo_access,
    repo_regions,
    jobs,
    sessions,
    webhook_deliveries,
    webhook_registrations,
    admin_sessions,
    nodes,
    subscriptions,
    stripe_events,
    teams,
    team_members,
    team_invites,
    team_repos,
    audit_events
);
