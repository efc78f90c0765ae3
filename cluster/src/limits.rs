//! Budgets every web node enforces together, in Redis/Valkey: a client adding repositories on
//! web A and web B draws from one budget. Fixed one-minute windows (`INCR` and `EXPIRE` in one
//! transaction on `limit:{name}:{client}:{minute}`): at most `per_minute` in each window, so at
//! most twice that across a window's edge. When Redis cannot answer, the node's own token bucket
//! decides (a node never stops taking requests because Redis is down).

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Shared per-client limits.
#[derive(Clone)]
pub struct SharedLimits {
    conn: ConnectionManager,
}

impl std::fmt::Debug for SharedLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedLimits")
    }
}

impl SharedLimits {
    /// Limits kept in the Redis/Valkey at `url` (connected on first use).
    pub fn new(url: &str) -> Result<SharedLimits, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(1)))
            .set_response_timeout(Some(std::time::Duration::from_secs(1)))
            .set_number_of_retries(1);
        let conn =
            ConnectionManager::new_lazy_with_config(client, config).map_err(|e| e.to_string())?;
        Ok(SharedLimits { conn })
    }

    /// Whether Redis answers `PING` on this node's connection within its one-second timeout
    /// (a readiness check).
    pub async fn reachable(&self) -> Result<(), redis::RedisError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
    }

    /// Takes one of `per_minute` from `client`'s budget `name` for this minute: `Ok(Err(secs))`
    /// until the window ends when it is spent; `Err` when Redis did not answer.
    pub async fn take(
        &self,
        name: &str,
        client: &str,
        per_minute: u32,
    ) -> Result<Result<(), u64>, redis::RedisError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let key = format!("limit:{name}:{client}:{}", now / 60);
        let mut conn = self.conn.clone();
        let (n,): (u64,) = redis::pipe()
            .atomic()
            .incr(&key, 1u64)
            .expire(&key, 120)
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(if n > u64::from(per_minute) {
            Err(60 - now % 60)
        } else {
            Ok(())
        })
    }
}
