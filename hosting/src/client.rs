//! Per-client budgets: a [`ClientKey`] names what one client controls (a signed-in user, or an
//! address with an IPv6 address cut to its /64: one subscriber gets a whole /64, so keying on
//! /128 would give every attacker 2^64 budgets).
//!
//! [`RateLimiter`] holds a token bucket per key in a bounded cache that forgets cold buckets one
//! at a time (never all at once, which would reset everyone). [`Gauge`] counts what a key holds
//! open (WebSockets, queued jobs) with a guard that gives it back when dropped. Who a request's
//! client is (the peer, or a trusted proxy's header) is the web layer's to say.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What one client controls: a signed-in user (their limits follow them from any address), or
/// an address: an IPv4 address, or an IPv6 /64 (IPv4-mapped addresses count as their IPv4
/// address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// A visitor not signed in, by address.
    Addr(IpAddr),
    /// A signed-in user, by the first 8 bytes of SHA-256 of their id.
    User([u8; 8]),
}

impl ClientKey {
    /// The key of `addr`.
    pub fn of(addr: IpAddr) -> ClientKey {
        match addr {
            IpAddr::V4(_) => ClientKey::Addr(addr),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::Addr(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    ClientKey::Addr(IpAddr::V6(bits.into()))
                }
            },
        }
    }

    /// The key of the signed-in user `user_id`.
    pub fn user(user_id: &str) -> ClientKey {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(user_id.as_bytes());
        let mut key = [0; 8];
        key.copy_from_slice(&digest[..8]);
        ClientKey::User(key)
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientKey::Addr(IpAddr::V4(a)) => write!(f, "{a}"),
            ClientKey::Addr(IpAddr::V6(a)) => write!(f, "{a}/64"),
            ClientKey::User(k) => {
                f.write_str("user:")?;
                k.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

/// Most buckets a [`RateLimiter`] remembers; colder ones are forgotten one at a time (a
/// forgotten bucket is a full one, so forgetting only ever errs towards letting a client in).
pub const MAX_BUCKETS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets per client: `per_minute` tokens a minute, bursts up to `burst`.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<quick_cache::unsync::Cache<ClientKey, Bucket>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("per_minute", &(self.rate * 60.0))
            .field("burst", &self.burst)
            .finish()
    }
}

impl RateLimiter {
    /// `per_minute` a minute with bursts of `burst`, remembering at most `capacity` clients.
    pub fn new(per_minute: u32, burst: u32, capacity: usize) -> RateLimiter {
        RateLimiter {
            rate: f64::from(per_minute.max(1)) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(quick_cache::unsync::Cache::new(capacity.max(1))),
        }
    }

    /// Takes one token from `key`'s bucket; `Err(seconds)` until the next one when it is empty.
    pub fn take(&self, key: ClientKey) -> Result<(), u64> {
        self.take_n(key, 1.0)
    }

    /// Runs `f` on `key`'s bucket refilled to now; a bucket not remembered is made full first
    /// when `create`, else `f` is not run. `None` when `f` did not run (a new client the cache
    /// did not admit counts as one with a full bucket).
    fn with_bucket<R>(
        &self,
        key: ClientKey,
        create: bool,
        f: impl FnOnce(&mut Bucket) -> R,
    ) -> Option<R> {
        let now = Instant::now();
        let (rate, burst) = (self.rate, self.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let mut bucket = if create {
            buckets
                .get_mut_or_insert_with(&key, || {
                    Ok::<_, std::convert::Infallible>(Bucket {
                        tokens: burst,
                        at: now,
                    })
                })
                .ok()
                .flatten()?
        } else {
            buckets.get_mut(&key)?
        };
        let b = &mut *bucket;
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        Some(f(b))
    }

    /// Takes `cost` tokens (expensive requests cost more); `Err(seconds)` until they are there.
    pub fn take_n(&self, key: ClientKey, cost: f64) -> Result<(), u64> {
        let rate = self.rate;
        self.with_bucket(key, true, |b| {
            if b.tokens >= cost {
                b.tokens -= cost;
                Ok(())
            } else {
                Err(((cost - b.tokens) / rate).ceil().max(1.0) as u64)
            }
        })
        .unwrap_or(Ok(()))
    }

    /// Whether `key` has `cost` tokens, without taking them; `Err(seconds)` until it has.
    pub fn has(&self, key: ClientKey, cost: f64) -> Result<(), u64> {
        let rate = self.rate;
        self.with_bucket(key, false, |b| {
            if b.tokens >= cost {
                Ok(())
            } else {
                Err(((cost - b.tokens) / rate).ceil().max(1.0) as u64)
            }
        })
        .unwrap_or(Ok(()))
    }

    /// Whether `key` has anything left (a bucket spent into debt by [`RateLimiter::spend`] has
    /// not); `Err(seconds)` until it has.
    pub fn ready(&self, key: ClientKey) -> Result<(), u64> {
        self.has(key, f64::MIN_POSITIVE)
    }

    /// Charges `cost` tokens after the fact (work whose cost is known only once done); the
    /// bucket may go into debt, at most one burst deep.
    pub fn spend(&self, key: ClientKey, cost: f64) {
        let burst = self.burst;
        self.with_bucket(key, true, |b| b.tokens = (b.tokens - cost).max(-burst));
    }

    /// Clients remembered now.
    pub fn len(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }

    /// Whether no client is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Counts what each client holds open, up to `limit` each.
#[derive(Debug)]
pub struct Gauge {
    limit: usize,
    held: Arc<Mutex<HashMap<ClientKey, usize>>>,
}

/// One unit a client holds; given back when dropped.
#[derive(Debug)]
pub struct Held {
    key: ClientKey,
    held: Arc<Mutex<HashMap<ClientKey, usize>>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

impl Gauge {
    /// At most `limit` per client.
    pub fn new(limit: usize) -> Gauge {
        Gauge {
            limit,
            held: Arc::default(),
        }
    }

    /// One more for `key`, or `None` when it holds `limit` already.
    pub fn acquire(&self, key: ClientKey) -> Option<Held> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let n = held.entry(key).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Held {
            key,
            held: Arc::clone(&self.held),
        })
    }

    /// What `key` holds now.
    pub fn count(&self, key: ClientKey) -> usize {
        self.held
            .lock()
            .map(|h| h.get(&key).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }
    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_v4_by_the_v4() {
        assert_eq!(
            ClientKey::of(ip("2001:db8:1:2:aaaa::1")),
            ClientKey::of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            ClientKey::of(ip("2001:db8:1:2::1")),
            ClientKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            ClientKey::of(ip("::ffff:192.0.2.7")),
            ClientKey::of(ip("192.0.2.7"))
        );
        assert_eq!(
            ClientKey::of(ip("2001:db8:1:2::9")).to_string(),
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn a_flood_of_new_clients_forgets_buckets_one_at_a_time() {
        // Regression: the map was cleared whole at 10,000 addresses, resetting everyone.
        let limiter = RateLimiter::new(1, 2, 100);
        let victim = ClientKey::of(ip("192.0.2.1"));
        for _ in 0..5 {
            let _ = limiter.take(victim);
        }
        assert!(limiter.take(victim).is_err(), "the victim spent its burst");
        for i in 0..10_000u32 {
            let _ = limiter.take(ClientKey::of(IpAddr::V4(i.into())));
            // A client that keeps asking stays remembered (it is the frequent one).
            if i % 50 == 0 {
                let _ = limiter.take(victim);
            }
        }
        assert!(limiter.len() <= 100, "{} buckets", limiter.len());
        assert!(
            limiter.take(victim).is_err(),
            "a busy client's empty bucket survives a flood of new ones"
        );
    }

    #[test]
    fn work_is_charged_after_it_is_done() {
        let work = RateLimiter::new(60_000, 3_000, 100); // 1,000 ms a second, 3 s bursts
        let k = ClientKey::of(ip("192.0.2.1"));
        assert!(work.ready(k).is_ok(), "a new client may start");
        work.spend(k, 5_000.0);
        let wait = work.ready(k).expect_err("in debt");
        assert!((2..=4).contains(&wait), "{wait} s until out of debt");
        assert!(
            work.ready(ClientKey::of(ip("192.0.2.2"))).is_ok(),
            "others are not"
        );
    }

    #[test]
    fn a_gauge_gives_back_on_drop() {
        let g = Gauge::new(2);
        let k = ClientKey::of(ip("192.0.2.1"));
        let a = g.acquire(k).expect("one");
        let b = g.acquire(k).expect("two");
        assert!(g.acquire(k).is_none());
        assert!(g.acquire(ClientKey::of(ip("192.0.2.2"))).is_some());
        drop(a);
        assert_eq!(g.count(k), 1);
        let _c = g.acquire(k).expect("room again");
        drop(b);
    }
}
