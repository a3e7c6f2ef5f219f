use std::fmt;
use std::time::{Duration, Instant};

use crate::loom::{Arc, AtomicU64, Ordering};
use crate::{Clock, ConfigError};

/// How a [`RetryBudget`] decides; see the constructors for the rules.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::retry::{BudgetConfig, RetryBudget};
///
/// // At most 20% of recent requests may be retries, plus 10 retries a second regardless.
/// let budget = RetryBudget::new(
///     BudgetConfig::ratio(0.2).with_min_per_second(10).with_window(Duration::from_secs(10)),
/// )?;
/// // gRPC's token bucket: retries stop once failures have drained half of 100 tokens.
/// let grpc = RetryBudget::new(BudgetConfig::token_bucket(100, 0.1))?;
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetConfig {
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    TokenBucket {
        max_tokens: u32,
        token_ratio: f64,
    },
    Ratio {
        ratio: f64,
        min_per_second: u32,
        window: Duration,
    },
}

impl BudgetConfig {
    /// gRPC's retry throttling: the bucket starts full at `max_tokens`; every failed attempt
    /// takes one token, every success gives back `token_ratio`; retries are allowed only while
    /// more than half the tokens remain. `max_tokens` in `1..=1_000_000`, `token_ratio` in
    /// `(0, max_tokens]`, kept to three decimals as gRPC does.
    pub const fn token_bucket(max_tokens: u32, token_ratio: f64) -> Self {
        Self {
            kind: Kind::TokenBucket {
                max_tokens,
                token_ratio,
            },
        }
    }

    /// Finagle's and tower's ratio with a floor: over the last `window`, retries may be at most
    /// `ratio` times the calls made plus `min_per_second × window` (so a quiet service can still
    /// retry). Defaults: `min_per_second` 10, `window` 10 s. `ratio` must be finite and at
    /// least 0.
    pub const fn ratio(ratio: f64) -> Self {
        Self {
            kind: Kind::Ratio {
                ratio,
                min_per_second: 10,
                window: Duration::from_secs(10),
            },
        }
    }

    /// Sets the floor of a ratio budget: retries allowed per second of window whatever the
    /// traffic. Token buckets ignore it.
    pub const fn with_min_per_second(mut self, min_per_second: u32) -> Self {
        if let Kind::Ratio { ratio, window, .. } = self.kind {
            self.kind = Kind::Ratio {
                ratio,
                min_per_second,
                window,
            };
        }
        self
    }

    /// Sets the sliding window of a ratio budget (at least 10 ms). Token buckets ignore it.
    pub const fn with_window(mut self, window: Duration) -> Self {
        if let Kind::Ratio {
            ratio,
            min_per_second,
            ..
        } = self.kind
        {
            self.kind = Kind::Ratio {
                ratio,
                min_per_second,
                window,
            };
        }
        self
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match self.kind {
            Kind::TokenBucket {
                max_tokens,
                token_ratio,
            } => {
                if !(1..=1_000_000).contains(&max_tokens) {
                    return Err(ConfigError::new(
                        "max_tokens",
                        format!(
                            "{max_tokens} is out of range; use 1..=1_000_000 (gRPC's default is 10)"
                        ),
                    ));
                }
                if !(token_ratio > 0.0 && token_ratio <= f64::from(max_tokens)) {
                    return Err(ConfigError::new(
                        "token_ratio",
                        format!(
                            "{token_ratio} is out of range; it must be above 0 and at most max_tokens (0.1 is common)"
                        ),
                    ));
                }
            }
            Kind::Ratio { ratio, window, .. } => {
                if !(ratio.is_finite() && ratio >= 0.0) {
                    return Err(ConfigError::new(
                        "ratio",
                        format!(
                            "{ratio} is not allowed; use a finite number at least 0 (0.2 allows retries worth 20% of calls)"
                        ),
                    ));
                }
                if window < MIN_WINDOW {
                    return Err(ConfigError::new(
                        "window",
                        format!(
                            "{window:?} is too short; the window must be at least {MIN_WINDOW:?}"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

const MIN_WINDOW: Duration = Duration::from_millis(10);
const MILLI: u64 = 1000;
const SLOTS: usize = 10;

/// A retry budget shared by every call to one dependency, so that retries cannot multiply an
/// outage: when most calls fail, a fixed attempt count would turn N calls into N × attempts;
/// a budget keeps retries to a share of the traffic.
///
/// A cheap handle: clone it into every [`Retry`](super::Retry) that calls the same dependency.
/// Thread-safe without locks: a success on a full token bucket is a single atomic load, and a
/// ratio budget counts each call with one atomic update of the current time slot.
///
/// A refused retry ends the call with [`StopReason::Budget`](crate::StopReason::Budget).
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<Inner>,
}

enum Inner {
    TokenBucket(TokenBucket),
    Ratio(Ratio),
}

impl RetryBudget {
    /// Builds a budget.
    ///
    /// # Errors
    ///
    /// Settings out of range; the message says which and why.
    pub fn new(config: BudgetConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let inner = match config.kind {
            Kind::TokenBucket {
                max_tokens,
                token_ratio,
            } => Inner::TokenBucket(TokenBucket::new(max_tokens, token_ratio)),
            Kind::Ratio {
                ratio,
                min_per_second,
                window,
            } => Inner::Ratio(Ratio::new(
                ratio,
                min_per_second,
                window,
                Clock::system().now(),
            )),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Whether recording a call needs the current time (ratio budgets do, token buckets don't).
    #[inline]
    pub(crate) fn needs_clock(&self) -> bool {
        matches!(*self.inner, Inner::Ratio(_))
    }

    /// Records that a call (not a retry) started.
    #[inline]
    pub(crate) fn deposit(&self, now: Option<Instant>) {
        if let (Inner::Ratio(ratio), Some(now)) = (&*self.inner, now) {
            ratio.deposit(now);
        }
    }

    /// Records the outcome of an attempt.
    #[inline]
    pub(crate) fn record(&self, failed: bool) {
        if let Inner::TokenBucket(bucket) = &*self.inner {
            if failed {
                bucket.on_failure();
            } else {
                bucket.on_success();
            }
        }
    }

    /// The budget's state now, on the system clock (see [`snapshot_at`](Self::snapshot_at)):
    /// for a health endpoint or a dashboard. A few atomic loads, no lock, no allocation, and
    /// nothing changes: a retry it says would pass is not reserved.
    ///
    /// # Examples
    ///
    /// ```
    /// use staunch::retry::{BudgetConfig, BudgetSnapshot, RetryBudget};
    ///
    /// let budget = RetryBudget::new(BudgetConfig::token_bucket(10, 0.1))?;
    /// match budget.snapshot() {
    ///     BudgetSnapshot::TokenBucket { tokens, max_tokens, .. } => {
    ///         assert_eq!((tokens, max_tokens), (10.0, 10));
    ///     }
    ///     other => unreachable!("{other:?}"),
    /// }
    /// assert!(budget.snapshot().retry_allowed());
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn snapshot(&self) -> BudgetSnapshot {
        self.snapshot_at(Clock::system().now())
    }

    /// The budget's state at `now`, the time a ratio budget's window is read at (a token
    /// bucket ignores it). Pass the clock of the policies that share the budget when it is not
    /// the system clock.
    pub fn snapshot_at(&self, now: Instant) -> BudgetSnapshot {
        match &*self.inner {
            Inner::TokenBucket(bucket) => BudgetSnapshot::TokenBucket {
                tokens: bucket.tokens.load(Ordering::Relaxed) as f64 / MILLI as f64,
                max_tokens: (bucket.max_milli / MILLI) as u32,
                retry_allowed: bucket.allows_retry(),
            },
            Inner::Ratio(ratio) => {
                let epoch = ratio.epoch(now);
                let requests = ratio.sum(&ratio.requests, epoch);
                let retries = ratio.sum(&ratio.retries, epoch);
                BudgetSnapshot::Ratio {
                    requests: requests as u64,
                    retries: retries as u64,
                    ratio: ratio.ratio,
                    floor: ratio.floor,
                    retry_allowed: ratio.allows(retries + 1.0, requests),
                }
            }
        }
    }

    /// Asks for one retry; `true` if allowed (and counted).
    pub(crate) fn try_retry(&self, now: Instant) -> bool {
        match &*self.inner {
            Inner::TokenBucket(bucket) => bucket.allows_retry(),
            Inner::Ratio(ratio) => ratio.try_withdraw(now),
        }
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.inner {
            Inner::TokenBucket(b) => f
                .debug_struct("RetryBudget::TokenBucket")
                .field(
                    "tokens",
                    &(b.tokens.load(Ordering::Relaxed) as f64 / MILLI as f64),
                )
                .field("max_tokens", &(b.max_milli / MILLI))
                .finish(),
            Inner::Ratio(r) => f
                .debug_struct("RetryBudget::Ratio")
                .field("ratio", &r.ratio)
                .field("floor", &r.floor)
                .field("window", &(r.slot * SLOTS as u32))
                .finish(),
        }
    }
}

/// A [`RetryBudget`]'s state at one moment, from [`RetryBudget::snapshot`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum BudgetSnapshot {
    /// A token bucket (gRPC's retry throttling).
    #[non_exhaustive]
    TokenBucket {
        /// The tokens left (to a thousandth).
        tokens: f64,
        /// The bucket's size.
        max_tokens: u32,
        /// Whether a retry would be allowed now: more than half the tokens are left.
        retry_allowed: bool,
    },
    /// A ratio with a floor, over a sliding window.
    #[non_exhaustive]
    Ratio {
        /// Calls (first attempts) counted in the current window.
        requests: u64,
        /// Retries allowed in the current window.
        retries: u64,
        /// The share of `requests` that retries may add.
        ratio: f64,
        /// The retries allowed per window whatever the traffic (`min_per_second × window`).
        floor: f64,
        /// Whether a retry would be allowed now: `retries + 1 <= ratio × requests + floor`.
        retry_allowed: bool,
    },
}

impl BudgetSnapshot {
    /// Whether a retry would be allowed now.
    pub fn retry_allowed(&self) -> bool {
        match *self {
            Self::TokenBucket { retry_allowed, .. } | Self::Ratio { retry_allowed, .. } => {
                retry_allowed
            }
        }
    }
}

/// gRPC's bucket, in thousandths of a token.
struct TokenBucket {
    tokens: AtomicU64,
    max_milli: u64,
    ratio_milli: u64,
}

impl TokenBucket {
    fn new(max_tokens: u32, token_ratio: f64) -> Self {
        let max_milli = u64::from(max_tokens) * MILLI;
        Self {
            tokens: AtomicU64::new(max_milli),
            max_milli,
            // gRPC keeps three decimals; at least one thousandth so successes always refill.
            ratio_milli: ((token_ratio * MILLI as f64).round() as u64).max(1),
        }
    }

    fn on_success(&self) {
        // The common case, a full bucket, is a load and no write.
        if self.tokens.load(Ordering::Relaxed) >= self.max_milli {
            return;
        }
        let _ = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some((t + self.ratio_milli).min(self.max_milli))
            });
    }

    fn on_failure(&self) {
        let _ = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                (t > 0).then(|| t.saturating_sub(MILLI))
            });
    }

    fn allows_retry(&self) -> bool {
        self.tokens.load(Ordering::Relaxed) > self.max_milli / 2
    }
}

/// Ratio with a floor over a sliding window of `SLOTS` time slots. Each slot packs its epoch
/// (upper 32 bits) with its count (lower 32 bits) in one atomic, so a slot is reset and counted
/// in one compare-exchange and never mixes two epochs.
struct Ratio {
    origin: Instant,
    slot: Duration,
    ratio: f64,
    floor: f64,
    requests: [AtomicU64; SLOTS],
    retries: [AtomicU64; SLOTS],
}

const COUNT_MASK: u64 = u32::MAX as u64;

impl Ratio {
    fn new(ratio: f64, min_per_second: u32, window: Duration, origin: Instant) -> Self {
        Self {
            origin,
            slot: window / SLOTS as u32,
            ratio,
            floor: f64::from(min_per_second) * window.as_secs_f64(),
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            retries: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_nanos();
        // Epochs only need to be distinct within a window; wrapping at 2^32 is harmless.
        ((since / self.slot.as_nanos().max(1)) as u64) & COUNT_MASK
    }

    fn deposit(&self, now: Instant) {
        let epoch = self.epoch(now);
        bump(&self.requests[epoch as usize % SLOTS], epoch);
    }

    fn try_withdraw(&self, now: Instant) -> bool {
        let epoch = self.epoch(now);
        let slot = &self.retries[epoch as usize % SLOTS];
        // Count first, then check: concurrent withdrawals each see the others, so together they
        // can never overshoot (at worst one is refused that a lock would have let through).
        bump(slot, epoch);
        let allowed = self.allows(
            self.sum(&self.retries, epoch),
            self.sum(&self.requests, epoch),
        );
        if !allowed {
            let _ = slot.fetch_update(Ordering::AcqRel, Ordering::Acquire, |packed| {
                (packed >> 32 == epoch && packed & COUNT_MASK > 0).then(|| packed - 1)
            });
        }
        allowed
    }

    /// Whether `retries` (counting the one asked for) fit the window's `requests`.
    fn allows(&self, retries: f64, requests: f64) -> bool {
        retries <= self.ratio * requests + self.floor
    }

    fn sum(&self, slots: &[AtomicU64; SLOTS], epoch: u64) -> f64 {
        let oldest = epoch.wrapping_sub(SLOTS as u64 - 1) & COUNT_MASK;
        slots
            .iter()
            .map(|slot| slot.load(Ordering::Acquire))
            .filter(|packed| {
                let e = packed >> 32;
                // Within the last SLOTS epochs, allowing for wrap-around.
                (e.wrapping_sub(oldest) & COUNT_MASK) < SLOTS as u64
            })
            .map(|packed| (packed & COUNT_MASK) as f64)
            .sum()
    }
}

fn bump(slot: &AtomicU64, epoch: u64) {
    let _ = slot.fetch_update(Ordering::AcqRel, Ordering::Acquire, |packed| {
        Some(if packed >> 32 == epoch {
            let count = (packed & COUNT_MASK).saturating_add(1).min(COUNT_MASK);
            (epoch << 32) | count
        } else {
            (epoch << 32) | 1
        })
    });
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn token_bucket(max: u32, ratio: f64) -> RetryBudget {
        RetryBudget::new(BudgetConfig::token_bucket(max, ratio)).unwrap()
    }

    #[test]
    fn invalid_budgets_name_the_field() {
        let cases = [
            (BudgetConfig::token_bucket(0, 0.1), "max_tokens"),
            (BudgetConfig::token_bucket(10, 0.0), "token_ratio"),
            (BudgetConfig::token_bucket(10, f64::NAN), "token_ratio"),
            (BudgetConfig::token_bucket(10, 11.0), "token_ratio"),
            (BudgetConfig::ratio(-0.1), "ratio"),
            (BudgetConfig::ratio(f64::INFINITY), "ratio"),
            (
                BudgetConfig::ratio(0.1).with_window(Duration::ZERO),
                "window",
            ),
        ];
        for (config, field) in cases {
            assert_eq!(
                RetryBudget::new(config).unwrap_err().field(),
                field,
                "{config:?}"
            );
        }
    }

    #[test]
    fn token_bucket_allows_retries_only_above_half() {
        let budget = token_bucket(10, 0.5);
        // 10 tokens; retries allowed while tokens > 5.
        for _ in 0..4 {
            budget.record(true);
        }
        assert!(budget.try_retry(Instant::now()), "6 tokens left");
        budget.record(true);
        assert!(
            !budget.try_retry(Instant::now()),
            "5 tokens is not more than half"
        );
        budget.record(false);
        budget.record(false);
        assert!(
            budget.try_retry(Instant::now()),
            "two successes refill one token"
        );
    }

    #[test]
    fn token_bucket_never_underflows_or_overfills() {
        let budget = token_bucket(3, 1.0);
        for _ in 0..100 {
            budget.record(true);
        }
        assert!(!budget.try_retry(Instant::now()));
        for _ in 0..100 {
            budget.record(false);
        }
        let Inner::TokenBucket(bucket) = &*budget.inner else {
            unreachable!()
        };
        assert_eq!(bucket.tokens.load(Ordering::Relaxed), 3 * MILLI);
    }

    #[test]
    fn ratio_budget_caps_retries_at_ratio_times_requests_plus_floor() {
        let t0 = Instant::now();
        let ratio = Ratio::new(0.6, 0, Duration::from_secs(10), t0);
        for _ in 0..100 {
            ratio.deposit(t0);
        }
        let allowed = (0..1000).filter(|_| ratio.try_withdraw(t0)).count();
        assert_eq!(
            allowed, 60,
            "0.6 of 100 requests, not 100% (tower's rounding bug)"
        );

        let with_floor = Ratio::new(0.1, 2, Duration::from_secs(10), t0);
        for _ in 0..100 {
            with_floor.deposit(t0);
        }
        let allowed = (0..1000).filter(|_| with_floor.try_withdraw(t0)).count();
        assert_eq!(allowed, 10 + 20, "ratio share plus 2/s over a 10 s window");
    }

    #[test]
    fn ratio_budget_forgets_old_slots() {
        let t0 = Instant::now();
        let ratio = Ratio::new(1.0, 0, Duration::from_secs(10), t0);
        for _ in 0..50 {
            ratio.deposit(t0);
        }
        assert!(ratio.try_withdraw(t0 + Duration::from_secs(9)));
        // Eleven seconds on, the deposits have left the window.
        assert!(!ratio.try_withdraw(t0 + Duration::from_secs(11)));
        // The retry at 9 s is still in the window: two new requests pay for it and one more.
        ratio.deposit(t0 + Duration::from_secs(11));
        ratio.deposit(t0 + Duration::from_secs(11));
        assert!(ratio.try_withdraw(t0 + Duration::from_secs(11)));
        assert!(!ratio.try_withdraw(t0 + Duration::from_secs(11)));
        // Far in the future (epochs wrap at 2^32 slots) nothing stale is counted.
        let far = t0 + Duration::from_secs(1) * (u32::MAX / 2);
        assert!(!ratio.try_withdraw(far));
    }

    #[test]
    fn a_token_bucket_snapshot_shows_its_tokens_and_whether_a_retry_would_pass() {
        let budget = token_bucket(10, 0.5);
        let full = budget.snapshot();
        assert_eq!(
            full,
            BudgetSnapshot::TokenBucket {
                tokens: 10.0,
                max_tokens: 10,
                retry_allowed: true
            }
        );
        for _ in 0..5 {
            budget.record(true);
        }
        budget.record(false);
        let BudgetSnapshot::TokenBucket {
            tokens,
            retry_allowed,
            ..
        } = budget.snapshot()
        else {
            panic!("a token bucket")
        };
        assert_eq!((tokens, retry_allowed), (5.5, true));
        budget.record(true);
        assert!(
            !budget.snapshot().retry_allowed(),
            "4.5 tokens, not above 5"
        );
        // Looking changes nothing: the same retry is still refused, and the snapshot agrees.
        assert!(!budget.try_retry(Instant::now()));
    }

    #[test]
    fn a_ratio_snapshot_shows_the_share_and_the_floor() {
        let budget = RetryBudget::new(
            BudgetConfig::ratio(0.5)
                .with_min_per_second(1)
                .with_window(Duration::from_secs(4)),
        )
        .unwrap();
        let Inner::Ratio(ratio) = &*budget.inner else {
            unreachable!()
        };
        let t0 = ratio.origin;
        for _ in 0..10 {
            budget.deposit(Some(t0));
        }
        // 0.5 x 10 requests + a floor of 1/s over 4 s: 9 retries.
        for _ in 0..8 {
            assert!(budget.try_retry(t0));
        }
        let snapshot = budget.snapshot_at(t0);
        assert_eq!(
            snapshot,
            BudgetSnapshot::Ratio {
                requests: 10,
                retries: 8,
                ratio: 0.5,
                floor: 4.0,
                retry_allowed: true
            }
        );
        assert!(
            budget.try_retry(t0),
            "the snapshot said one more would pass"
        );
        assert!(!budget.snapshot_at(t0).retry_allowed());
        assert!(!budget.try_retry(t0), "and now it would not");
        // Once the window has moved on, nothing is counted.
        let later = budget.snapshot_at(t0 + Duration::from_secs(60));
        assert!(matches!(
            later,
            BudgetSnapshot::Ratio {
                requests: 0,
                retries: 0,
                retry_allowed: true,
                ..
            }
        ));
    }

    #[test]
    fn concurrent_withdrawals_never_overshoot() {
        let t0 = Instant::now();
        let ratio = std::sync::Arc::new(Ratio::new(0.5, 0, Duration::from_secs(10), t0));
        for _ in 0..1000 {
            ratio.deposit(t0);
        }
        let granted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let ratio = &ratio;
                    s.spawn(move || (0..10_000).filter(|_| ratio.try_withdraw(t0)).count())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert!(
            granted <= 500,
            "granted {granted} retries against a cap of 500"
        );
        assert!(
            granted >= 490,
            "refusals under contention are rare: granted {granted}"
        );
    }
}

#[cfg(loom)]
mod loom_tests {
    use super::*;

    #[test]
    fn loom_ratio_withdrawals_never_overshoot() {
        loom::model(|| {
            let t0 = Instant::now();
            let ratio = Arc::new(Ratio::new(1.0, 0, Duration::from_secs(10), t0));
            ratio.deposit(t0);
            let other = {
                let ratio = ratio.clone();
                loom::thread::spawn(move || ratio.try_withdraw(t0))
            };
            let here = ratio.try_withdraw(t0);
            let there = other.join().unwrap();
            assert!(!(here && there), "one request allows one retry, not two");
        });
    }

    #[test]
    fn loom_token_bucket_stays_within_bounds() {
        loom::model(|| {
            let bucket = Arc::new(TokenBucket::new(2, 1.0));
            let other = {
                let bucket = bucket.clone();
                loom::thread::spawn(move || {
                    bucket.on_failure();
                    bucket.on_success();
                })
            };
            bucket.on_failure();
            other.join().unwrap();
            let tokens = bucket.tokens.load(Ordering::Relaxed);
            assert_eq!(
                tokens, MILLI,
                "two failures and one success from two tokens leave one"
            );
        });
    }
}
