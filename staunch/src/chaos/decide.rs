//! The pure core: what one call gets, drawn from its own generator. No clock, no shared state.

use std::time::Duration;

/// What a chaos policy does to one call, as [`Chaos::decide`](super::Chaos::decide) draws it and
/// [`Chaos::apply`](super::Chaos::apply) carries it out.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::chaos::{Chaos, ChaosConfig, Injection};
///
/// let chaos = Chaos::new(
///     ChaosConfig::new()
///         .with_delay(1.0, Duration::from_millis(300))
///         .with_result(1.0, || 9.99),
/// )?;
/// let injection = chaos.decide_keyed(7);
/// assert_eq!(injection, Injection::DelayedResult(Duration::from_millis(300)));
/// assert_eq!(injection.delay(), Some(Duration::from_millis(300)));
/// assert!(injection.is_result());
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Injection {
    /// Nothing: the call runs as it would without chaos.
    None,
    /// The call is not made; the configured error comes back at once.
    Error,
    /// The call is made after this delay.
    Delay(Duration),
    /// The call is not made; the configured substitute comes back at once.
    Result,
    /// The call is not made; the configured substitute comes back after this delay.
    DelayedResult(Duration),
}

impl Injection {
    /// The injected delay, if any.
    pub const fn delay(self) -> Option<Duration> {
        match self {
            Self::Delay(delay) | Self::DelayedResult(delay) => Some(delay),
            _ => None,
        }
    }

    /// Whether the call is replaced by the configured error.
    pub const fn is_error(self) -> bool {
        matches!(self, Self::Error)
    }

    /// Whether the call is replaced by the configured substitute.
    pub const fn is_result(self) -> bool {
        matches!(self, Self::Result | Self::DelayedResult(_))
    }

    /// Whether anything is injected.
    pub const fn is_injected(self) -> bool {
        !matches!(self, Self::None)
    }

    /// A short lowercase name, as used in telemetry: `none`, `error`, `delay`, `result` or
    /// `delayed_result`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Error => "error",
            Self::Delay(_) => "delay",
            Self::Result => "result",
            Self::DelayedResult(_) => "delayed_result",
        }
    }
}

/// The probability of each kind, each in `[0, 1]` (validated before they get here).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rates {
    pub(crate) error: f64,
    pub(crate) delay: f64,
    pub(crate) result: f64,
}

/// The range an injected delay is drawn from, `min <= max` (validated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DelayRange {
    pub(crate) min: Duration,
    pub(crate) max: Duration,
}

impl DelayRange {
    /// A delay drawn uniformly from `[min, max]`, to the nanosecond; `min` itself when the range
    /// is one point, with no draw.
    fn draw(self, rng: &mut fastrand::Rng) -> Duration {
        if self.min >= self.max {
            return self.min;
        }
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.u64(nanos(self.min)..=nanos(self.max)))
    }
}

/// One call's injection: independent draws in a fixed order, each only for a kind whose rate is
/// above zero.
///
/// 1. error, with probability `error`: if it hits, nothing else is drawn;
/// 2. delay, with probability `delay`, and if it hits, its length from `range`;
/// 3. result, with probability `result`.
#[inline]
pub(crate) fn decide(rates: Rates, range: DelayRange, rng: &mut fastrand::Rng) -> Injection {
    if hits(rng, rates.error) {
        return Injection::Error;
    }
    let delay = hits(rng, rates.delay).then(|| range.draw(rng));
    match (delay, hits(rng, rates.result)) {
        (None, false) => Injection::None,
        (Some(delay), false) => Injection::Delay(delay),
        (None, true) => Injection::Result,
        (Some(delay), true) => Injection::DelayedResult(delay),
    }
}

/// `true` with probability `rate`: a draw in `[0, 1)` below it. A zero rate draws nothing; a
/// rate of 1 always hits.
#[inline]
fn hits(rng: &mut fastrand::Rng, rate: f64) -> bool {
    rate > 0.0 && rng.f64() < rate
}

/// The seed of the generator of the call with `key` under the policy's `seed`: SplitMix64's
/// finaliser over both, so that neighbouring keys get unrelated streams.
#[inline]
pub(crate) fn call_seed(seed: u64, key: u64) -> u64 {
    let mut z = seed ^ key.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXED: DelayRange = DelayRange {
        min: Duration::from_millis(100),
        max: Duration::from_millis(100),
    };

    fn rates(error: f64, delay: f64, result: f64) -> Rates {
        Rates {
            error,
            delay,
            result,
        }
    }

    /// The injections of calls `0..n` under `seed`.
    fn injections(rates: Rates, range: DelayRange, seed: u64, n: u64) -> Vec<Injection> {
        (0..n)
            .map(|key| {
                decide(
                    rates,
                    range,
                    &mut fastrand::Rng::with_seed(call_seed(seed, key)),
                )
            })
            .collect()
    }

    #[test]
    fn a_zero_rate_never_injects_and_draws_nothing() {
        let mut rng = fastrand::Rng::with_seed(1);
        let before = rng.clone();
        for _ in 0..100 {
            assert_eq!(
                decide(rates(0.0, 0.0, 0.0), FIXED, &mut rng),
                Injection::None
            );
        }
        assert_eq!(rng, before, "no number drawn");
    }

    #[test]
    fn a_rate_of_one_always_injects() {
        for injection in injections(rates(1.0, 0.0, 0.0), FIXED, 2, 1000) {
            assert_eq!(injection, Injection::Error);
        }
        for injection in injections(rates(0.0, 1.0, 0.0), FIXED, 2, 1000) {
            assert_eq!(injection, Injection::Delay(Duration::from_millis(100)));
        }
        for injection in injections(rates(0.0, 1.0, 1.0), FIXED, 2, 1000) {
            assert_eq!(
                injection,
                Injection::DelayedResult(Duration::from_millis(100))
            );
        }
    }

    #[test]
    fn an_injected_error_excludes_the_other_kinds() {
        let all = injections(rates(1.0, 1.0, 1.0), FIXED, 3, 100);
        assert!(all.iter().all(|i| *i == Injection::Error), "{all:?}");
    }

    #[test]
    fn the_kinds_combine_as_independent_draws_in_order() {
        // P(error) = e; P(delay) = (1-e)d; P(result) = (1-e)r; P(both) = (1-e)dr.
        let (e, d, r) = (0.2, 0.5, 0.3);
        let n = 200_000;
        let all = injections(rates(e, d, r), FIXED, 4, n);
        let share =
            |f: fn(&Injection) -> bool| all.iter().filter(|i| f(i)).count() as f64 / n as f64;
        let close = |got: f64, want: f64| assert!((got - want).abs() < 0.005, "{got} vs {want}");
        close(share(|i| i.is_error()), e);
        close(share(|i| i.delay().is_some()), (1.0 - e) * d);
        close(share(|i| i.is_result()), (1.0 - e) * r);
        close(
            share(|i| matches!(i, Injection::DelayedResult(_))),
            (1.0 - e) * d * r,
        );
        close(
            share(|i| *i == Injection::None),
            (1.0 - e) * (1.0 - d) * (1.0 - r),
        );
    }

    #[test]
    fn delays_spread_over_the_whole_range_and_stay_in_it() {
        let range = DelayRange {
            min: Duration::from_millis(600),
            max: Duration::from_millis(2000),
        };
        let delays: Vec<Duration> = injections(rates(0.0, 1.0, 0.0), range, 5, 10_000)
            .into_iter()
            .filter_map(Injection::delay)
            .collect();
        assert_eq!(delays.len(), 10_000);
        assert!(delays.iter().all(|d| (range.min..=range.max).contains(d)));
        let below = |ms| {
            delays
                .iter()
                .filter(|d| **d < Duration::from_millis(ms))
                .count()
        };
        // A uniform draw: a tenth of the range holds about a tenth of the delays.
        assert!((800..1200).contains(&below(740)), "{}", below(740));
        assert!((8800..9200).contains(&below(1860)), "{}", below(1860));
    }

    #[test]
    fn a_delay_too_long_for_u64_nanoseconds_saturates_instead_of_panicking() {
        let range = DelayRange {
            min: Duration::MAX,
            max: Duration::MAX,
        };
        assert_eq!(range.draw(&mut fastrand::Rng::with_seed(1)), Duration::MAX);
        let range = DelayRange {
            min: Duration::from_secs(1),
            max: Duration::MAX,
        };
        let delay = range.draw(&mut fastrand::Rng::with_seed(1));
        assert!(delay >= Duration::from_secs(1));
    }

    #[test]
    fn each_key_has_its_own_stream() {
        let seeds: std::collections::HashSet<u64> = (0..10_000).map(|k| call_seed(9, k)).collect();
        assert_eq!(seeds.len(), 10_000);
        assert_ne!(call_seed(9, 0), call_seed(10, 0));
        // The same key under the same seed draws the same injection, whenever it is asked.
        let r = rates(0.3, 0.3, 0.3);
        assert_eq!(injections(r, FIXED, 9, 50), injections(r, FIXED, 9, 50));
    }
}
