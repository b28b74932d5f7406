//! Per-tenant ingestion rate limiting: a token bucket per tenant, shared by
//! every signal's write path.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::tenant::TenantId;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "ingestion rate limit ({rate} per second, burst {burst}) exceeded while adding {requested} {unit}"
)]
pub struct RateLimited {
    pub rate: f64,
    pub burst: f64,
    pub requested: u64,
    pub unit: &'static str,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets keyed by tenant; `rate` tokens a second up to `burst`.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    unit: &'static str,
    buckets: Mutex<HashMap<TenantId, Bucket>>,
}

impl RateLimiter {
    /// `unit` names what is counted in error messages (`samples`, `lines`).
    pub fn new(rate: f64, burst: f64, unit: &'static str) -> Self {
        Self {
            rate,
            burst: burst.max(rate),
            unit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `n` tokens or refuses the whole request; a request larger than
    /// the burst can never pass, so it is refused with the same message.
    pub fn try_acquire(&self, tenant: &TenantId, n: u64) -> Result<(), RateLimited> {
        self.try_acquire_at(tenant, n, Instant::now())
    }

    fn try_acquire_at(&self, tenant: &TenantId, n: u64, now: Instant) -> Result<(), RateLimited> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.entry(tenant.clone()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.updated = now;
        let want = n as f64;
        if want <= b.tokens {
            b.tokens -= want;
            Ok(())
        } else {
            Err(RateLimited {
                rate: self.rate,
                burst: self.burst,
                requested: n,
                unit: self.unit,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_at_rate_up_to_burst() {
        let l = RateLimiter::new(10.0, 20.0, "samples");
        let t = TenantId::anonymous();
        let start = Instant::now();
        assert!(l.try_acquire_at(&t, 20, start).is_ok());
        let e = l.try_acquire_at(&t, 1, start).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ingestion rate limit (10 per second, burst 20) exceeded while adding 1 samples"
        );
        // half a second refills five tokens
        assert!(
            l.try_acquire_at(&t, 5, start + Duration::from_millis(500))
                .is_ok()
        );
        assert!(
            l.try_acquire_at(&t, 1, start + Duration::from_millis(500))
                .is_err()
        );
        // never beyond the burst
        assert!(
            l.try_acquire_at(&t, 21, start + Duration::from_secs(100))
                .is_err()
        );
        // tenants are independent
        let other = TenantId::parse("other").unwrap();
        assert!(l.try_acquire_at(&other, 20, start).is_ok());
    }
}
