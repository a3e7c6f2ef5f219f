//! The adaptive limit algorithms, as Netflix's concurrency-limits defines them: their settings
//! ([`Aimd`], [`Vegas`], [`Gradient2`]) and the pure state each updates per sample.
//!
//! A sample is one finished call: its round-trip time, how many calls were in flight when it
//! was admitted (counting itself), and whether it was dropped (timed out, or refused by an
//! overloaded dependency). The state takes the sample and returns the new limit; it reads no
//! clock and allocates nothing.

use std::time::Duration;

use super::config::{Kind, check_bounds, check_number};
use crate::ConfigError;

/// AIMD (additive increase, multiplicative decrease), Netflix's `AIMDLimit`: a loss-based limit.
///
/// Per sample: a drop, or a round trip longer than [`timeout`](Self::with_timeout), multiplies
/// the limit by [`backoff_ratio`](Self::with_backoff_ratio) (rounded down); a success while at
/// least half the limit was in flight adds one; otherwise the limit stays. The result is kept
/// within `[min_limit, max_limit]`.
///
/// | setting | default (Netflix's) |
/// |---|---|
/// | [`with_initial_limit`](Self::with_initial_limit) | 20 |
/// | [`with_min_limit`](Self::with_min_limit) | 20 |
/// | [`with_max_limit`](Self::with_max_limit) | 200 |
/// | [`with_backoff_ratio`](Self::with_backoff_ratio) | 0.9, in `[0.5, 1)` |
/// | [`with_timeout`](Self::with_timeout) | 5 s |
///
/// Choose it for a client: it reacts to what the dependency says (timeouts, 503s) rather than
/// to latency, which a client sees mixed with the network's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aimd {
    pub(crate) initial_limit: u32,
    pub(crate) min_limit: u32,
    pub(crate) max_limit: u32,
    pub(crate) backoff_ratio: f64,
    pub(crate) timeout: Duration,
}

impl Aimd {
    /// Netflix's defaults (see the table).
    pub const fn new() -> Self {
        Self {
            initial_limit: 20,
            min_limit: 20,
            max_limit: 200,
            backoff_ratio: 0.9,
            timeout: Duration::from_secs(5),
        }
    }

    /// Sets the limit to start with (default 20), within `[min_limit, max_limit]`.
    pub const fn with_initial_limit(mut self, limit: u32) -> Self {
        self.initial_limit = limit;
        self
    }

    /// Sets the floor (default 20, at least 1).
    pub const fn with_min_limit(mut self, limit: u32) -> Self {
        self.min_limit = limit;
        self
    }

    /// Sets the ceiling (default 200).
    pub const fn with_max_limit(mut self, limit: u32) -> Self {
        self.max_limit = limit;
        self
    }

    /// Sets the factor a drop multiplies the limit by (default 0.9, in `[0.5, 1)`).
    pub const fn with_backoff_ratio(mut self, ratio: f64) -> Self {
        self.backoff_ratio = ratio;
        self
    }

    /// Sets the round-trip time above which a successful call counts as a drop (default 5 s,
    /// non-zero).
    pub const fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The limit after `sample`, from `limit`: AIMD is a pure function of the two, so a shared
    /// limit updates with a compare-exchange, no lock.
    #[inline]
    pub(crate) fn next(&self, limit: u32, sample: Sample) -> u32 {
        let next = if sample.dropped || sample.rtt > self.timeout {
            (f64::from(limit) * self.backoff_ratio) as u32
        } else if u64::from(sample.inflight) * 2 >= u64::from(limit) {
            limit.saturating_add(1)
        } else {
            return limit.clamp(self.min_limit, self.max_limit);
        };
        next.clamp(self.min_limit, self.max_limit)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_bounds(
            ("min_limit", self.min_limit),
            self.initial_limit,
            ("max_limit", self.max_limit),
        )?;
        check_number(
            "backoff_ratio",
            self.backoff_ratio,
            |r| (0.5..1.0).contains(&r),
            "[0.5, 1)",
        )?;
        if self.timeout.is_zero() {
            return Err(ConfigError::new("timeout", "use a non-zero timeout"));
        }
        Ok(())
    }
}

impl Default for Aimd {
    fn default() -> Self {
        Self::new()
    }
}

/// Vegas, Netflix's `VegasLimit`: a latency-based limit after TCP Vegas.
///
/// It keeps the least round trip seen (`rtt_noload`) and estimates the queue at the dependency
/// as `queue = ceil(limit × (1 − rtt_noload / rtt))`. Per sample: a new least round trip is
/// recorded and changes nothing; otherwise a drop decreases the limit; a sample with less than
/// half the limit in flight changes nothing; else `queue <= threshold` adds `beta`,
/// `queue < alpha` increases, `queue > beta` decreases, and in between nothing changes. The
/// new limit is kept within `[min_limit, max_concurrency]` and smoothed:
/// `limit = (1 − smoothing) × limit + smoothing × new`.
///
/// With `log10(n)` meaning `max(1, floor(log10(n)))`: `alpha = 3·log10(limit)`,
/// `beta = 6·log10(limit)`, `threshold = log10(limit)`, increase `limit + log10(limit)`,
/// decrease `limit − log10(limit)`, unless set. Every `probe_multiplier × limit` samples (times a
/// jitter drawn uniformly from `[0.5, 1)`), the next sample's round trip becomes `rtt_noload`,
/// so that a floor from a quieter time does not stick.
///
/// | setting | default (Netflix's) |
/// |---|---|
/// | [`with_initial_limit`](Self::with_initial_limit) | 20 |
/// | [`with_min_limit`](Self::with_min_limit) | 1 (Netflix's fixed floor) |
/// | [`with_max_concurrency`](Self::with_max_concurrency) | 1000 |
/// | [`with_smoothing`](Self::with_smoothing) | 1.0, in `(0, 1]` |
/// | [`with_alpha`](Self::with_alpha), [`with_beta`](Self::with_beta) | `3·log10(limit)`, `6·log10(limit)` |
/// | [`with_increase`](Self::with_increase), [`with_decrease`](Self::with_decrease) | `limit ± log10(limit)` |
/// | [`with_probe_multiplier`](Self::with_probe_multiplier) | 30 |
/// | [`with_seed`](Self::with_seed) | none: the probe jitter draws from its own stream |
///
/// A round trip of zero (a call that took no time on a paused clock) counts as one nanosecond.
#[derive(Clone, Copy, Debug)]
pub struct Vegas {
    pub(crate) initial_limit: u32,
    pub(crate) min_limit: u32,
    pub(crate) max_concurrency: u32,
    pub(crate) smoothing: f64,
    pub(crate) alpha: Option<u32>,
    pub(crate) beta: Option<u32>,
    pub(crate) increase: Option<fn(f64) -> f64>,
    pub(crate) decrease: Option<fn(f64) -> f64>,
    pub(crate) probe_multiplier: u32,
    pub(crate) seed: Option<u64>,
}

impl Vegas {
    /// Netflix's defaults (see the table).
    pub const fn new() -> Self {
        Self {
            initial_limit: 20,
            min_limit: 1,
            max_concurrency: 1000,
            smoothing: 1.0,
            alpha: None,
            beta: None,
            increase: None,
            decrease: None,
            probe_multiplier: 30,
            seed: None,
        }
    }

    /// Sets the limit to start with (default 20).
    pub const fn with_initial_limit(mut self, limit: u32) -> Self {
        self.initial_limit = limit;
        self
    }

    /// Sets the floor (default 1).
    pub const fn with_min_limit(mut self, limit: u32) -> Self {
        self.min_limit = limit;
        self
    }

    /// Sets the ceiling (default 1000).
    pub const fn with_max_concurrency(mut self, limit: u32) -> Self {
        self.max_concurrency = limit;
        self
    }

    /// Sets how much of each change applies (default 1.0: all of it), in `(0, 1]`.
    pub const fn with_smoothing(mut self, smoothing: f64) -> Self {
        self.smoothing = smoothing;
        self
    }

    /// Fixes `alpha`, the estimated queue below which the limit grows (default `3·log10(limit)`).
    pub const fn with_alpha(mut self, alpha: u32) -> Self {
        self.alpha = Some(alpha);
        self
    }

    /// Fixes `beta`, the estimated queue above which the limit shrinks, and the step of an
    /// aggressive increase (default `6·log10(limit)`).
    pub const fn with_beta(mut self, beta: u32) -> Self {
        self.beta = Some(beta);
        self
    }

    /// Sets the increase, a function of the current (fractional) limit (default
    /// `limit + log10(limit)`).
    pub const fn with_increase(mut self, increase: fn(f64) -> f64) -> Self {
        self.increase = Some(increase);
        self
    }

    /// Sets the decrease, a function of the current (fractional) limit (default
    /// `limit − log10(limit)`).
    pub const fn with_decrease(mut self, decrease: fn(f64) -> f64) -> Self {
        self.decrease = Some(decrease);
        self
    }

    /// Sets how often `rtt_noload` is re-probed: every `multiplier × limit` samples, jittered
    /// (default 30, at least 1).
    pub const fn with_probe_multiplier(mut self, multiplier: u32) -> Self {
        self.probe_multiplier = multiplier;
        self
    }

    /// Seeds the probe jitter, for reproducible tests and simulations.
    pub const fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_bounds(
            ("min_limit", self.min_limit),
            self.initial_limit,
            ("max_concurrency", self.max_concurrency),
        )?;
        check_number(
            "smoothing",
            self.smoothing,
            |s| s > 0.0 && s <= 1.0,
            "(0, 1]",
        )?;
        if self.probe_multiplier == 0 {
            return Err(ConfigError::new("probe_multiplier", "use at least 1"));
        }
        Ok(())
    }
}

/// Functions compare by address: two configs are equal when they hold the same functions.
impl PartialEq for Vegas {
    fn eq(&self, other: &Self) -> bool {
        let address = |f: Option<fn(f64) -> f64>| f.map(|f| f as usize);
        self.initial_limit == other.initial_limit
            && self.min_limit == other.min_limit
            && self.max_concurrency == other.max_concurrency
            && self.smoothing == other.smoothing
            && self.alpha == other.alpha
            && self.beta == other.beta
            && address(self.increase) == address(other.increase)
            && address(self.decrease) == address(other.decrease)
            && self.probe_multiplier == other.probe_multiplier
            && self.seed == other.seed
    }
}

impl Default for Vegas {
    fn default() -> Self {
        Self::new()
    }
}

/// Gradient2, Netflix's `Gradient2Limit`: follows the divergence of the latest round trip from
/// a long-term exponential average of round trips.
///
/// Per sample: `long_rtt` takes the round trip (a plain mean over the first 10 samples, then an
/// exponential average with factor `2 / (long_window + 1)`); if `long_rtt` is more than twice the
/// round trip, it is cut by 5% (recovering from a long overload); with less than half the limit
/// in flight nothing else changes. Else
/// `gradient = clamp(rtt_tolerance × long_rtt / rtt, 0.5, 1)`,
/// `new = limit × gradient + queue_size`, smoothed:
/// `limit = (1 − smoothing) × limit + smoothing × new`, within `[min_limit, max_concurrency]`.
/// Drops are not used (as in Netflix's).
///
/// | setting | default (Netflix's) |
/// |---|---|
/// | [`with_initial_limit`](Self::with_initial_limit) | 20 |
/// | [`with_min_limit`](Self::with_min_limit) | 20 |
/// | [`with_max_concurrency`](Self::with_max_concurrency) | 200 |
/// | [`with_smoothing`](Self::with_smoothing) | 0.2, in `(0, 1]` |
/// | [`with_queue_size`](Self::with_queue_size) | 4 |
/// | [`with_long_window`](Self::with_long_window) | 600 samples |
/// | [`with_rtt_tolerance`](Self::with_rtt_tolerance) | 1.5, at least 1 |
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gradient2 {
    pub(crate) initial_limit: u32,
    pub(crate) min_limit: u32,
    pub(crate) max_concurrency: u32,
    pub(crate) smoothing: f64,
    pub(crate) queue_size: u32,
    pub(crate) long_window: u32,
    pub(crate) rtt_tolerance: f64,
}

/// Samples averaged plainly before the long-term average turns exponential (Netflix's 10).
const WARMUP_SAMPLES: u32 = 10;

impl Gradient2 {
    /// Netflix's defaults (see the table).
    pub const fn new() -> Self {
        Self {
            initial_limit: 20,
            min_limit: 20,
            max_concurrency: 200,
            smoothing: 0.2,
            queue_size: 4,
            long_window: 600,
            rtt_tolerance: 1.5,
        }
    }

    /// Sets the limit to start with (default 20).
    pub const fn with_initial_limit(mut self, limit: u32) -> Self {
        self.initial_limit = limit;
        self
    }

    /// Sets the floor (default 20).
    pub const fn with_min_limit(mut self, limit: u32) -> Self {
        self.min_limit = limit;
        self
    }

    /// Sets the ceiling (default 200).
    pub const fn with_max_concurrency(mut self, limit: u32) -> Self {
        self.max_concurrency = limit;
        self
    }

    /// Sets how much of each change applies (default 0.2), in `(0, 1]`.
    pub const fn with_smoothing(mut self, smoothing: f64) -> Self {
        self.smoothing = smoothing;
        self
    }

    /// Sets how far the limit may grow per sample while latency holds (default 4).
    pub const fn with_queue_size(mut self, queue_size: u32) -> Self {
        self.queue_size = queue_size;
        self
    }

    /// Sets the long-term average's window, in samples (default 600, at least 1).
    pub const fn with_long_window(mut self, samples: u32) -> Self {
        self.long_window = samples;
        self
    }

    /// Sets how much slower than the long-term average a round trip may be before the limit
    /// shrinks (default 1.5: 50% slower), at least 1.
    pub const fn with_rtt_tolerance(mut self, tolerance: f64) -> Self {
        self.rtt_tolerance = tolerance;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_bounds(
            ("min_limit", self.min_limit),
            self.initial_limit,
            ("max_concurrency", self.max_concurrency),
        )?;
        check_number(
            "smoothing",
            self.smoothing,
            |s| s > 0.0 && s <= 1.0,
            "(0, 1]",
        )?;
        check_number("rtt_tolerance", self.rtt_tolerance, |t| t >= 1.0, "[1, ∞)")?;
        if self.long_window == 0 {
            return Err(ConfigError::new("long_window", "use at least 1 sample"));
        }
        Ok(())
    }
}

impl Default for Gradient2 {
    fn default() -> Self {
        Self::new()
    }
}

/// One finished call, as the algorithms see it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Sample {
    pub(crate) rtt: Duration,
    /// Calls in flight when this one was admitted, itself included.
    pub(crate) inflight: u32,
    pub(crate) dropped: bool,
}

/// `max(1, floor(log10(n)))`, Netflix's `Log10RootIntFunction`.
fn log10_root(n: u32) -> u32 {
    n.checked_ilog10().unwrap_or(0).max(1)
}

/// The mutable state of an adaptive limit.
#[derive(Debug)]
pub(crate) enum State {
    Aimd {
        config: Aimd,
        limit: u32,
    },
    Vegas {
        config: Vegas,
        estimated: f64,
        rtt_noload: u64,
        probe_count: u64,
        probe_jitter: f64,
        rng: fastrand::Rng,
    },
    Gradient2 {
        config: Gradient2,
        estimated: f64,
        long_rtt: f64,
        long_sum: f64,
        long_count: u32,
    },
}

impl State {
    /// The state of `kind`, or `None` for a fixed limit.
    pub(crate) fn new(kind: &Kind) -> Option<Self> {
        Some(match *kind {
            Kind::Fixed(_) => return None,
            Kind::Aimd(config) => Self::Aimd {
                config,
                limit: config.initial_limit,
            },
            Kind::Vegas(config) => {
                let mut rng = match config.seed {
                    Some(seed) => fastrand::Rng::with_seed(seed),
                    None => fastrand::Rng::new(),
                };
                let probe_jitter = jitter(&mut rng);
                Self::Vegas {
                    config,
                    estimated: f64::from(config.initial_limit),
                    rtt_noload: 0,
                    probe_count: 0,
                    probe_jitter,
                    rng,
                }
            }
            Kind::Gradient2(config) => Self::Gradient2 {
                config,
                estimated: f64::from(config.initial_limit),
                long_rtt: 0.0,
                long_sum: 0.0,
                long_count: 0,
            },
        })
    }

    /// The current limit.
    #[cfg(test)]
    pub(crate) fn limit(&self) -> u32 {
        match self {
            Self::Aimd { limit, .. } => *limit,
            Self::Vegas { estimated, .. } | Self::Gradient2 { estimated, .. } => *estimated as u32,
        }
    }

    /// Takes one sample; returns the new limit.
    pub(crate) fn on_sample(&mut self, sample: Sample) -> u32 {
        match self {
            Self::Aimd { config, limit } => {
                *limit = config.next(*limit, sample);
                *limit
            }
            Self::Vegas {
                config,
                estimated,
                rtt_noload,
                probe_count,
                probe_jitter,
                rng,
            } => {
                let rtt = nanos(sample.rtt).max(1);
                *probe_count += 1;
                let probe_at = *probe_jitter * f64::from(config.probe_multiplier) * *estimated;
                if probe_at <= *probe_count as f64 {
                    *probe_jitter = jitter(rng);
                    *probe_count = 0;
                    *rtt_noload = rtt;
                    return *estimated as u32;
                }
                if *rtt_noload == 0 || rtt < *rtt_noload {
                    *rtt_noload = rtt;
                    return *estimated as u32;
                }
                vegas_update(config, estimated, *rtt_noload, rtt, sample)
            }
            Self::Gradient2 {
                config,
                estimated,
                long_rtt,
                long_sum,
                long_count,
            } => {
                let short = nanos(sample.rtt).max(1) as f64;
                if *long_count < WARMUP_SAMPLES {
                    *long_count += 1;
                    *long_sum += short;
                    *long_rtt = *long_sum / f64::from(*long_count);
                } else {
                    let factor = 2.0 / (f64::from(config.long_window) + 1.0);
                    *long_rtt = *long_rtt * (1.0 - factor) + short * factor;
                }
                let long = *long_rtt;
                if long / short > 2.0 {
                    *long_rtt *= 0.95;
                }
                if f64::from(sample.inflight) < *estimated / 2.0 {
                    return *estimated as u32;
                }
                let gradient = (config.rtt_tolerance * long / short).clamp(0.5, 1.0);
                let next = *estimated * gradient + f64::from(config.queue_size);
                let next = *estimated * (1.0 - config.smoothing) + next * config.smoothing;
                *estimated = next.clamp(
                    f64::from(config.min_limit),
                    f64::from(config.max_concurrency),
                );
                *estimated as u32
            }
        }
    }
}

fn vegas_update(
    config: &Vegas,
    estimated: &mut f64,
    rtt_noload: u64,
    rtt: u64,
    sample: Sample,
) -> u32 {
    let current = *estimated;
    let queue = (current * (1.0 - rtt_noload as f64 / rtt as f64)).ceil();
    let log = |limit: f64| f64::from(log10_root(limit as u32));
    let decrease = |limit: f64| match config.decrease {
        Some(f) => f(limit),
        None => limit - log(limit),
    };
    let next = if sample.dropped {
        decrease(current)
    } else if f64::from(sample.inflight) * 2.0 < current {
        return current as u32;
    } else {
        let whole = current as u32;
        let alpha = f64::from(config.alpha.unwrap_or(3 * log10_root(whole)));
        let beta = f64::from(config.beta.unwrap_or(6 * log10_root(whole)));
        let threshold = f64::from(log10_root(whole));
        if queue <= threshold {
            current + beta
        } else if queue < alpha {
            match config.increase {
                Some(f) => f(current),
                None => current + log(current),
            }
        } else if queue > beta {
            decrease(current)
        } else {
            return current as u32;
        }
    };
    let bounded = next.clamp(
        f64::from(config.min_limit),
        f64::from(config.max_concurrency),
    );
    *estimated = (1.0 - config.smoothing) * current + config.smoothing * bounded;
    *estimated as u32
}

/// A probe jitter in `[0.5, 1)`.
fn jitter(rng: &mut fastrand::Rng) -> f64 {
    0.5 + rng.f64() * 0.5
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn state(kind: Kind) -> State {
        State::new(&kind).unwrap()
    }

    fn ok(rtt: Duration, inflight: u32) -> Sample {
        Sample {
            rtt,
            inflight,
            dropped: false,
        }
    }

    fn drop_at(rtt: Duration, inflight: u32) -> Sample {
        Sample {
            rtt,
            inflight,
            dropped: true,
        }
    }

    #[test]
    fn log10_root_is_netflix_lookup() {
        // Log10RootIntFunctionTest: 0 -> 1, 100 -> 2, 10000 -> 4.
        assert_eq!(log10_root(0), 1);
        assert_eq!(log10_root(9), 1);
        assert_eq!(log10_root(100), 2);
        assert_eq!(log10_root(999), 2);
        assert_eq!(log10_root(10_000), 4);
    }

    // AIMDLimitTest, ported.
    #[test]
    fn aimd_reference_cases() {
        let aimd = state(Kind::Aimd(Aimd::new().with_initial_limit(20)));
        assert_eq!(aimd.limit(), 20);

        let mut aimd = state(Kind::Aimd(Aimd::new().with_initial_limit(20)));
        assert_eq!(aimd.on_sample(ok(MS, 10)), 21, "increaseOnSuccess");

        let mut aimd = state(Kind::Aimd(Aimd::new().with_initial_limit(30)));
        assert_eq!(
            aimd.on_sample(drop_at(Duration::ZERO, 0)),
            27,
            "decreaseOnDrops"
        );

        let mut aimd = state(Kind::Aimd(
            Aimd::new()
                .with_initial_limit(21)
                .with_max_limit(21)
                .with_min_limit(1),
        ));
        assert_eq!(aimd.on_sample(ok(MS, 10)), 21, "successOverflow");
    }

    #[test]
    fn aimd_steps_pinned() {
        let mut aimd = state(Kind::Aimd(
            Aimd::new()
                .with_initial_limit(10)
                .with_min_limit(5)
                .with_max_limit(12)
                .with_timeout(100 * MS),
        ));
        let steps = [
            (ok(MS, 5), 11),       // half the limit in use: +1
            (ok(MS, 5), 11),       // 5 * 2 < 11: app-limited, no change
            (ok(MS, 6), 12),       // +1
            (ok(MS, 12), 12),      // at the ceiling
            (ok(101 * MS, 1), 10), // slower than the timeout: a drop, 12 * 0.9 = 10.8 -> 10
            (drop_at(MS, 1), 9),   // 9.0
            (drop_at(MS, 1), 8),   // 8.1
            (drop_at(MS, 1), 7),   // 7.2
            (drop_at(MS, 1), 6),   // 6.3
            (drop_at(MS, 1), 5),   // 5.4
            (drop_at(MS, 1), 5),   // 4.5 -> the floor
            (ok(100 * MS, 3), 6),  // exactly the timeout is not slower than it
        ];
        for (i, (sample, limit)) in steps.into_iter().enumerate() {
            assert_eq!(aimd.on_sample(sample), limit, "step {i}: {sample:?}");
        }
    }

    fn vegas_reference() -> Vegas {
        Vegas::new()
            .with_alpha(3)
            .with_beta(6)
            .with_smoothing(1.0)
            .with_initial_limit(10)
            .with_max_concurrency(20)
            .with_seed(1)
    }

    // VegasLimitTest, ported.
    #[test]
    fn vegas_reference_cases() {
        assert_eq!(state(Kind::Vegas(vegas_reference())).limit(), 10);

        let mut large = state(Kind::Vegas(
            Vegas::new()
                .with_initial_limit(10_000)
                .with_max_concurrency(20_000)
                .with_seed(1),
        ));
        let sec = Duration::from_secs(10);
        assert_eq!(large.on_sample(ok(sec, 5000)), 10_000, "largeLimitIncrease");
        assert_eq!(large.on_sample(ok(sec, 6000)), 10_024, "largeLimitIncrease");

        let mut v = state(Kind::Vegas(vegas_reference()));
        assert_eq!(v.on_sample(ok(10 * MS, 10)), 10, "increaseLimit");
        assert_eq!(v.on_sample(ok(10 * MS, 11)), 16, "increaseLimit");

        let mut v = state(Kind::Vegas(vegas_reference()));
        assert_eq!(v.on_sample(ok(10 * MS, 10)), 10, "decreaseLimit");
        assert_eq!(v.on_sample(ok(50 * MS, 11)), 9, "decreaseLimit");

        let mut v = state(Kind::Vegas(vegas_reference()));
        assert_eq!(
            v.on_sample(ok(10 * MS, 10)),
            10,
            "noChangeIfWithinThresholds"
        );
        assert_eq!(
            v.on_sample(ok(14 * MS, 14)),
            10,
            "noChangeIfWithinThresholds"
        );

        let halve = |limit: f64| limit / 2.0;
        let mut v = state(Kind::Vegas(
            Vegas::new()
                .with_decrease(halve)
                .with_smoothing(0.5)
                .with_initial_limit(100)
                .with_max_concurrency(200)
                .with_seed(1),
        ));
        assert_eq!(v.on_sample(ok(10 * MS, 100)), 100, "decreaseSmoothing");
        assert_eq!(v.on_sample(ok(20 * MS, 100)), 75, "decreaseSmoothing");
        assert_eq!(v.on_sample(ok(20 * MS, 100)), 56, "decreaseSmoothing");

        let mut v = state(Kind::Vegas(
            Vegas::new()
                .with_decrease(halve)
                .with_initial_limit(100)
                .with_max_concurrency(200)
                .with_seed(1),
        ));
        assert_eq!(
            v.on_sample(ok(10 * MS, 100)),
            100,
            "decreaseWithoutSmoothing"
        );
        assert_eq!(
            v.on_sample(ok(20 * MS, 100)),
            50,
            "decreaseWithoutSmoothing"
        );
        assert_eq!(
            v.on_sample(ok(20 * MS, 100)),
            25,
            "decreaseWithoutSmoothing"
        );
    }

    #[test]
    fn vegas_drops_decrease_and_the_floor_holds() {
        let mut v = state(Kind::Vegas(vegas_reference().with_min_limit(8)));
        assert_eq!(v.on_sample(ok(10 * MS, 10)), 10); // rtt_noload
        assert_eq!(v.on_sample(drop_at(10 * MS, 1)), 9); // a drop decreases, in flight or not
        assert_eq!(v.on_sample(drop_at(10 * MS, 1)), 8);
        assert_eq!(v.on_sample(drop_at(10 * MS, 1)), 8, "the floor");
        assert_eq!(v.on_sample(ok(10 * MS, 1)), 8, "app-limited: no change");
    }

    #[test]
    fn vegas_probes_rtt_noload_again_after_jittered_samples() {
        // probe_multiplier 1, limit 10: a probe after jitter * 10 samples, jitter in [0.5, 1).
        let mut v = state(Kind::Vegas(vegas_reference().with_probe_multiplier(1)));
        v.on_sample(ok(10 * MS, 10));
        let mut probed_after = None;
        for i in 1..=10 {
            // Slower, app-limited samples keep the limit at 10; a probe takes the round trip
            // as the new rtt_noload. The first sample counted too: the probe comes at the
            // (i + 1)th, with i + 1 >= jitter * 10.
            v.on_sample(ok(50 * MS, 1));
            let State::Vegas { rtt_noload, .. } = &v else {
                unreachable!()
            };
            if *rtt_noload == nanos(50 * MS) {
                probed_after = Some(i);
                break;
            }
        }
        assert_eq!(v.limit(), 10);
        let probed_after = probed_after.expect("a probe within 10 samples");
        assert!((4..=9).contains(&probed_after), "{probed_after}");
    }

    #[test]
    fn gradient2_steps_pinned() {
        let mut g = state(Kind::Gradient2(
            Gradient2::new()
                .with_initial_limit(20)
                .with_min_limit(10)
                .with_max_concurrency(30),
        ));
        // Steady 10 ms with the limit in use: gradient 1 (tolerance 1.5 clamps), so
        // new = limit + 4, smoothed by 0.2: +0.8 per sample.
        assert_eq!(g.on_sample(ok(10 * MS, 20)), 20); // 20.8
        assert_eq!(g.on_sample(ok(10 * MS, 20)), 21); // 21.6
        assert_eq!(g.on_sample(ok(10 * MS, 20)), 22); // 22.4
        // App-limited: no change.
        assert_eq!(g.on_sample(ok(10 * MS, 5)), 22);
        // A round trip 4x the long-term average (now (4 x 10 + 40) / 5 = 16 ms):
        // gradient = max(0.5, 1.5 * 16 / 40 = 0.6) = 0.6; new = 22.4 * 0.6 + 4 = 17.44;
        // smoothed: 22.4 * 0.8 + 17.44 * 0.2 = 21.408.
        assert_eq!(g.on_sample(ok(40 * MS, 25)), 21);
        let State::Gradient2 {
            estimated,
            long_rtt,
            ..
        } = &g
        else {
            unreachable!()
        };
        assert!((*estimated - 21.408).abs() < 1e-9, "{estimated}");
        assert!((*long_rtt - 16e6).abs() < 1e-3, "{long_rtt}");
        // Drops are not used.
        assert_eq!(g.on_sample(drop_at(16 * MS, 1)), 21);
    }

    #[test]
    fn gradient2_long_average_warms_up_then_decays_exponentially() {
        // ExpAvgMeasurementTest, through the algorithm: samples 10..19 ms average plainly
        // (10, 10.5, ..., 14.5), then 100 ms with a window of 100 gives 16.2 ms.
        let mut g = state(Kind::Gradient2(Gradient2::new().with_long_window(100)));
        for (i, ms) in (10..20).enumerate() {
            g.on_sample(ok(ms * MS, 1));
            let State::Gradient2 { long_rtt, .. } = &g else {
                unreachable!()
            };
            let expected = (10.0 + 0.5 * i as f64) * 1e6;
            assert!((long_rtt - expected).abs() < 1e3, "{i}: {long_rtt}");
        }
        g.on_sample(ok(100 * MS, 1));
        let State::Gradient2 { long_rtt, .. } = &g else {
            unreachable!()
        };
        assert!((long_rtt / 1e6 - 16.2).abs() < 0.1, "{long_rtt}");
    }

    #[test]
    fn gradient2_cuts_a_long_average_far_above_the_latest() {
        let mut g = state(Kind::Gradient2(Gradient2::new()));
        for _ in 0..10 {
            g.on_sample(ok(100 * MS, 1));
        }
        g.on_sample(ok(10 * MS, 1));
        let State::Gradient2 { long_rtt, .. } = &g else {
            unreachable!()
        };
        // (100 * (1 - 2/601) + 10 * 2/601) ms, then cut by 5%.
        let expected = (100.0 * (1.0 - 2.0 / 601.0) + 10.0 * 2.0 / 601.0) * 0.95 * 1e6;
        assert!(
            (long_rtt - expected).abs() < 1.0,
            "{long_rtt} vs {expected}"
        );
    }

    #[test]
    fn bad_settings_name_the_field() {
        let cases: [(Kind, &str); 9] = [
            (Kind::Aimd(Aimd::new().with_min_limit(0)), "min_limit"),
            (
                Kind::Aimd(Aimd::new().with_min_limit(50).with_max_limit(40)),
                "min_limit",
            ),
            (
                Kind::Aimd(Aimd::new().with_backoff_ratio(f64::NAN)),
                "backoff_ratio",
            ),
            (
                Kind::Aimd(Aimd::new().with_backoff_ratio(1.0)),
                "backoff_ratio",
            ),
            (
                Kind::Aimd(Aimd::new().with_initial_limit(500)),
                "initial_limit",
            ),
            (Kind::Vegas(Vegas::new().with_smoothing(0.0)), "smoothing"),
            (
                Kind::Vegas(Vegas::new().with_max_concurrency(0)),
                "max_concurrency",
            ),
            (
                Kind::Gradient2(Gradient2::new().with_rtt_tolerance(0.9)),
                "rtt_tolerance",
            ),
            (
                Kind::Gradient2(Gradient2::new().with_long_window(0)),
                "long_window",
            ),
        ];
        for (kind, field) in cases {
            let err = crate::limit::LimitConfig {
                kind,
                max_queue: 0,
                max_wait: Duration::from_secs(1),
            }
            .validate()
            .unwrap_err();
            assert_eq!(err.field(), field, "{kind:?}: {err}");
        }
    }
}
