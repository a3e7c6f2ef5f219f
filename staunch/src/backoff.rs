//! Delays between attempts: constant, linear or exponential growth, capped, with jitter.
//!
//! A [`Backoff`] is a small `Copy` configuration; [`Backoff::delays`] turns it into an endless
//! [`Iterator`] of delays, one per retry. Retry *n* (n = 1 for the first retry) waits:
//!
//! ```text
//! base(n) = min(max_delay, initial * multiplier^(n-1))     exponential
//!         = min(max_delay, initial + increment * (n-1))    linear
//!         = min(max_delay, initial)                        constant
//! ```
//!
//! computed with saturation, so no attempt number or duration overflows or panics. Jitter then
//! spreads each delay so that clients that failed together do not retry together:
//!
//! | jitter | delay | spread at the cap |
//! |---|---|---|
//! | [`None`](Jitter::None) | `base` | none: every client retries in lockstep |
//! | [`Full`](Jitter::Full) (default) | `U(0, base)` | `[0, max_delay]` |
//! | [`Equal`](Jitter::Equal) | `base/2 + U(0, base/2)` | `[max_delay/2, max_delay]` |
//! | [`Proportional(f)`](Jitter::Proportional) | `U(base(1-f), min(max_delay, base(1+f)))` | `[max_delay(1-f), max_delay]` |
//! | [`Decorrelated`](Jitter::Decorrelated) | `U(initial, min(max_delay, 3 * previous))` | `[initial, max_delay]` |
//!
//! No jitter kind ever returns more than `max_delay`, and none collapses onto it: at saturation
//! the delays still spread (the cap bounds the *range*, not the draw). Decorrelated jitter (AWS's
//! "decorrelated jitter") carries the previous delay from one retry to the next and ignores the
//! growth kind: it uses only `initial` and `max_delay`.
//!
//! Random numbers come from a seedable generator: [`Backoff::with_seed`] fixes the whole sequence
//! for a test (every iterator of that config then yields the same delays). Without a seed every
//! iterator draws its own stream, seeded from `fastrand`'s thread-local generator: a program that
//! calls `fastrand::seed` on its thread (a deterministic simulation, say) gets reproducible yet
//! distinct streams per call.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use staunch::backoff::{Backoff, Jitter};
//!
//! let backoff = Backoff::exponential(Duration::from_millis(100))
//!     .with_multiplier(2.0)
//!     .with_max_delay(Duration::from_secs(1))
//!     .with_jitter(Jitter::None);
//! let delays: Vec<_> = backoff.delays()?.take(5).collect();
//! assert_eq!(delays, [100, 200, 400, 800, 1000].map(Duration::from_millis));
//! # Ok::<(), staunch::ConfigError>(())
//! ```

use std::time::Duration;

use crate::ConfigError;

/// How a delay is spread around its base value. See the [module docs](self) for the formulas.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Jitter {
    /// No jitter: the base delay exactly. Clients that failed together retry together.
    None,
    /// `U(0, base)`: the most spread, the least total work under contention (the default).
    #[default]
    Full,
    /// `base/2 + U(0, base/2)`: never shorter than half the base delay.
    Equal,
    /// `U(base(1-f), base(1+f))`, upper end clamped to `max_delay`; `f` must be in `[0, 1]`.
    Proportional(f64),
    /// `U(initial, min(max_delay, 3 * previous))`, carrying the previous delay across retries.
    Decorrelated,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Growth {
    Constant,
    Linear { increment: Duration },
    Exponential { multiplier: f64 },
}

/// The delay schedule between attempts. `Copy`; validated by [`validate`](Self::validate) or when
/// a policy is built from it.
///
/// Defaults: multiplier 2.0 (exponential), increment = `initial` (linear), `max_delay` 30 s (or
/// `initial` if that is larger), [`Jitter::Full`], no seed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::backoff::{Backoff, Jitter};
///
/// let backoff = Backoff::exponential(Duration::from_millis(50))
///     .with_max_delay(Duration::from_secs(5))
///     .with_jitter(Jitter::Equal);
/// for delay in backoff.delays()?.take(20) {
///     assert!(delay <= Duration::from_secs(5));
/// }
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max_delay: Duration,
    growth: Growth,
    jitter: Jitter,
    seed: Option<u64>,
}

const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(30);

impl Backoff {
    const fn with_growth(initial: Duration, growth: Growth) -> Self {
        let max_delay = if initial.as_nanos() > DEFAULT_MAX_DELAY.as_nanos() {
            initial
        } else {
            DEFAULT_MAX_DELAY
        };
        Self {
            initial,
            max_delay,
            growth,
            jitter: Jitter::Full,
            seed: None,
        }
    }

    /// `initial * multiplier^(n-1)`, multiplier 2.0 unless set.
    pub const fn exponential(initial: Duration) -> Self {
        Self::with_growth(initial, Growth::Exponential { multiplier: 2.0 })
    }

    /// `initial + increment * (n-1)`, increment = `initial` unless set.
    pub const fn linear(initial: Duration) -> Self {
        Self::with_growth(initial, Growth::Linear { increment: initial })
    }

    /// `delay` before every retry (jittered unless the jitter is [`Jitter::None`]).
    pub const fn constant(delay: Duration) -> Self {
        Self::with_growth(delay, Growth::Constant)
    }

    /// Sets the growth factor of an exponential backoff (must be finite and at least 1). Other
    /// kinds ignore it.
    pub const fn with_multiplier(mut self, multiplier: f64) -> Self {
        if let Growth::Exponential { .. } = self.growth {
            self.growth = Growth::Exponential { multiplier };
        }
        self
    }

    /// Sets the step of a linear backoff. Other kinds ignore it.
    pub const fn with_increment(mut self, increment: Duration) -> Self {
        if let Growth::Linear { .. } = self.growth {
            self.growth = Growth::Linear { increment };
        }
        self
    }

    /// Sets the cap on every delay (must be at least `initial`).
    pub const fn with_max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// Sets the jitter kind.
    pub const fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Fixes the random sequence, for tests and simulations. In production leave it unset so that
    /// every call draws its own delays.
    pub const fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The first delay's base value.
    pub const fn initial(&self) -> Duration {
        self.initial
    }

    /// The cap on every delay.
    pub const fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The jitter kind.
    pub const fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// A multiplier below 1 or not finite, a proportional jitter factor outside `[0, 1]`, a
    /// `max_delay` below `initial`, or decorrelated jitter with a zero `initial` (it could never
    /// grow).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Growth::Exponential { multiplier } = self.growth
            && !(multiplier.is_finite() && multiplier >= 1.0)
        {
            return Err(ConfigError::new(
                "multiplier",
                format!(
                    "{multiplier} is not allowed; the multiplier must be a finite number at least 1 \
                         (use 2.0 for doubling, 1.0 for a constant delay)"
                ),
            ));
        }
        if let Jitter::Proportional(f) = self.jitter
            && !(0.0..=1.0).contains(&f)
        {
            return Err(ConfigError::new(
                "jitter",
                format!(
                    "Jitter::Proportional({f}) is not allowed; the factor must be in [0, 1] (0.2 spreads delays by ±20%)"
                ),
            ));
        }
        if self.max_delay < self.initial {
            return Err(ConfigError::new(
                "max_delay",
                format!(
                    "max_delay ({:?}) is below the initial delay ({:?}); raise max_delay or lower the initial delay",
                    self.max_delay, self.initial
                ),
            ));
        }
        if self.jitter == Jitter::Decorrelated && self.initial.is_zero() {
            return Err(ConfigError::new(
                "jitter",
                "decorrelated jitter draws from [initial, 3 x previous] and cannot grow from a zero initial delay; set a non-zero initial delay",
            ));
        }
        Ok(())
    }

    /// The delays before retry 1, 2, 3, ...: an endless iterator.
    ///
    /// # Errors
    ///
    /// The configuration is invalid; see [`validate`](Self::validate).
    pub fn delays(&self) -> Result<Delays, ConfigError> {
        self.validate()?;
        Ok(Delays::new(*self))
    }

    /// The un-jittered delay before retry `n` (n = 1 for the first retry), capped at `max_delay`.
    /// Decorrelated jitter ignores it.
    pub fn base_delay(&self, n: u32) -> Duration {
        let steps = n.saturating_sub(1);
        let base = match self.growth {
            Growth::Constant => self.initial,
            Growth::Linear { increment } => {
                self.initial.saturating_add(increment.saturating_mul(steps))
            }
            Growth::Exponential { multiplier } => {
                scale(self.initial, multiplier.powf(f64::from(steps)))
            }
        };
        base.min(self.max_delay)
    }
}

/// The endless sequence of delays of a [`Backoff`], made by [`Backoff::delays`].
#[derive(Clone, Debug)]
pub struct Delays {
    config: Backoff,
    state: DelayState,
}

impl Delays {
    /// Builds the iterator of an already validated config.
    pub(crate) fn new(config: Backoff) -> Self {
        Self {
            config,
            state: DelayState::new(&config),
        }
    }
}

impl Iterator for Delays {
    type Item = Duration;

    #[inline]
    fn next(&mut self) -> Option<Duration> {
        Some(self.state.next(&self.config))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

/// Where a sequence of delays stands, without its config: what a retry loop keeps per call
/// (16 bytes), reading the config from its policy.
#[derive(Clone, Debug)]
pub(crate) struct DelayState {
    /// The retry number of the next delay.
    next_retry: u32,
    /// The previous delay, for decorrelated jitter.
    previous: Duration,
    rng: fastrand::Rng,
}

impl DelayState {
    pub(crate) fn new(config: &Backoff) -> Self {
        let rng = match config.seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        Self {
            next_retry: 1,
            previous: config.initial,
            rng,
        }
    }

    /// The next delay of the sequence of `config`, which must be the config it was made for.
    pub(crate) fn next(&mut self, config: &Backoff) -> Duration {
        let base = config.base_delay(self.next_retry);
        let delay = match config.jitter {
            Jitter::None => base,
            Jitter::Full => uniform(&mut self.rng, Duration::ZERO, base),
            Jitter::Equal => {
                let half = base / 2;
                half + uniform(&mut self.rng, Duration::ZERO, base - half)
            }
            Jitter::Proportional(f) => {
                let low = scale(base, 1.0 - f);
                let high = scale(base, 1.0 + f).min(config.max_delay);
                uniform(&mut self.rng, low, high)
            }
            Jitter::Decorrelated => {
                let upper = config.max_delay.min(self.previous.saturating_mul(3));
                uniform(&mut self.rng, config.initial, upper)
            }
        };
        self.previous = delay;
        self.next_retry = self.next_retry.saturating_add(1);
        delay
    }
}

/// `d * factor`, saturating at `Duration::MAX`, zero for NaN or negative factors; exact in
/// nanoseconds below 2^53 ns (104 days).
pub(crate) fn scale(d: Duration, factor: f64) -> Duration {
    from_nanos_f64(d.as_nanos() as f64 * factor)
}

fn from_nanos_f64(nanos: f64) -> Duration {
    // NaN (0 * inf) and negatives are zero; anything at or past Duration::MAX saturates.
    if nanos.is_nan() || nanos <= 0.0 {
        return Duration::ZERO;
    }
    const NANOS_PER_SEC: f64 = 1e9;
    let secs = (nanos / NANOS_PER_SEC).floor();
    if secs >= u64::MAX as f64 {
        return Duration::MAX;
    }
    let sub = (nanos - secs * NANOS_PER_SEC).clamp(0.0, NANOS_PER_SEC - 1.0);
    Duration::new(secs as u64, sub as u32)
}

/// A uniform draw from `[low, high]` (just `low` if the range is empty).
fn uniform(rng: &mut fastrand::Rng, low: Duration, high: Duration) -> Duration {
    let Some(span) = high.checked_sub(low).filter(|s| !s.is_zero()) else {
        return low;
    };
    let offset = match u64::try_from(span.as_nanos()) {
        Ok(span_nanos) => Duration::from_nanos(rng.u64(0..=span_nanos)),
        // Spans over 584 years: float precision is plenty.
        Err(_) => scale(span, rng.f64()).min(span),
    };
    low.saturating_add(offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    fn exact(b: Backoff, n: usize) -> Vec<Duration> {
        b.with_jitter(Jitter::None)
            .delays()
            .unwrap()
            .take(n)
            .collect()
    }

    #[test]
    fn growth_formulas() {
        assert_eq!(
            exact(
                Backoff::exponential(100 * MS).with_max_delay(Duration::from_secs(1)),
                6
            ),
            [100, 200, 400, 800, 1000, 1000].map(Duration::from_millis)
        );
        assert_eq!(
            exact(Backoff::exponential(10 * MS).with_multiplier(3.0), 4),
            [10, 30, 90, 270].map(Duration::from_millis)
        );
        assert_eq!(
            exact(
                Backoff::linear(100 * MS)
                    .with_increment(50 * MS)
                    .with_max_delay(250 * MS),
                5
            ),
            [100, 150, 200, 250, 250].map(Duration::from_millis)
        );
        assert_eq!(exact(Backoff::constant(7 * MS), 3), [7 * MS; 3]);
    }

    #[test]
    fn default_max_delay_never_sits_below_initial() {
        let b = Backoff::exponential(Duration::from_secs(60));
        assert_eq!(b.max_delay(), Duration::from_secs(60));
        assert!(b.validate().is_ok());
        assert_eq!(Backoff::constant(MS).max_delay(), DEFAULT_MAX_DELAY);
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let cases = [
            (Backoff::exponential(MS).with_multiplier(0.99), "multiplier"),
            (
                Backoff::exponential(MS).with_multiplier(f64::NAN),
                "multiplier",
            ),
            (
                Backoff::exponential(MS).with_multiplier(f64::INFINITY),
                "multiplier",
            ),
            (
                Backoff::constant(MS).with_jitter(Jitter::Proportional(1.5)),
                "jitter",
            ),
            (
                Backoff::constant(MS).with_jitter(Jitter::Proportional(-0.1)),
                "jitter",
            ),
            (
                Backoff::constant(MS).with_jitter(Jitter::Proportional(f64::NAN)),
                "jitter",
            ),
            (Backoff::constant(10 * MS).with_max_delay(MS), "max_delay"),
            (
                Backoff::constant(Duration::ZERO).with_jitter(Jitter::Decorrelated),
                "jitter",
            ),
        ];
        for (backoff, field) in cases {
            let err = backoff.delays().unwrap_err();
            assert_eq!(err.field(), field, "{backoff:?}: {err}");
        }
    }

    #[test]
    fn seeded_sequences_repeat() {
        for jitter in [
            Jitter::Full,
            Jitter::Equal,
            Jitter::Proportional(0.3),
            Jitter::Decorrelated,
        ] {
            let b = Backoff::exponential(MS).with_jitter(jitter).with_seed(42);
            let a: Vec<_> = b.delays().unwrap().take(30).collect();
            let c: Vec<_> = b.delays().unwrap().take(30).collect();
            assert_eq!(a, c, "{jitter:?}");
        }
    }

    #[test]
    fn decorrelated_starts_in_initial_to_three_initial() {
        let b = Backoff::exponential(100 * MS).with_jitter(Jitter::Decorrelated);
        for seed in 0..200 {
            let first = b.with_seed(seed).delays().unwrap().next().unwrap();
            assert!((100 * MS..=300 * MS).contains(&first), "{first:?}");
        }
    }

    #[test]
    fn tiny_delays_do_not_panic() {
        let tiny = Duration::from_nanos(1);
        for jitter in [
            Jitter::None,
            Jitter::Full,
            Jitter::Equal,
            Jitter::Proportional(1.0),
            Jitter::Decorrelated,
        ] {
            let b = Backoff::exponential(tiny)
                .with_max_delay(tiny)
                .with_jitter(jitter);
            for d in b.delays().unwrap().take(10) {
                assert!(d <= tiny);
            }
        }
    }

    fn any_duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (0u64..1_000_000_000).prop_map(Duration::from_nanos),
            (0u64..u64::MAX, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
            Just(Duration::from_nanos(1)),
            Just(Duration::MAX),
        ]
    }

    fn any_jitter() -> impl Strategy<Value = Jitter> {
        prop_oneof![
            Just(Jitter::None),
            Just(Jitter::Full),
            Just(Jitter::Equal),
            (0.0f64..=1.0).prop_map(Jitter::Proportional),
            Just(Jitter::Decorrelated),
        ]
    }

    fn any_backoff() -> impl Strategy<Value = Backoff> {
        (
            any_duration(),
            any_duration(),
            0u8..3,
            1.0f64..1000.0,
            any_duration(),
            any_jitter(),
            any::<u64>(),
        )
            .prop_map(|(a, b, kind, multiplier, increment, jitter, seed)| {
                let (initial, max) = if a <= b { (a, b) } else { (b, a) };
                let initial = initial.max(Duration::from_nanos(1));
                let backoff = match kind {
                    0 => Backoff::exponential(initial).with_multiplier(multiplier),
                    1 => Backoff::linear(initial).with_increment(increment),
                    _ => Backoff::constant(initial),
                };
                backoff
                    .with_max_delay(max.max(initial))
                    .with_jitter(jitter)
                    .with_seed(seed)
            })
    }

    proptest! {
        #[test]
        fn every_delay_is_capped_and_nothing_panics(backoff in any_backoff(), skip in 0usize..200) {
            let mut delays = backoff.delays().unwrap();
            for d in delays.by_ref().skip(skip).take(20) {
                prop_assert!(d <= backoff.max_delay());
            }
        }

        #[test]
        fn base_delay_is_capped_and_monotonic_for_any_attempt(backoff in any_backoff(), n in any::<u32>()) {
            let here = backoff.base_delay(n);
            prop_assert!(here <= backoff.max_delay());
            prop_assert!(backoff.base_delay(n.saturating_add(1)) >= here);
        }

        #[test]
        fn jitter_keeps_spreading_at_the_cap(
            initial_ms in 1u64..1000,
            cap_factor in 2u32..100,
            jitter in prop_oneof![
                Just(Jitter::Full),
                Just(Jitter::Equal),
                (0.05f64..=1.0).prop_map(Jitter::Proportional),
                Just(Jitter::Decorrelated),
            ],
            seed in any::<u64>(),
        ) {
            let initial = Duration::from_millis(initial_ms);
            let cap = initial * cap_factor;
            let backoff = Backoff::exponential(initial).with_max_delay(cap).with_jitter(jitter).with_seed(seed);
            // Far past saturation: retry 1000 onwards.
            let at_cap: Vec<_> = backoff.delays().unwrap().skip(1000).take(50).collect();
            prop_assert!(at_cap.iter().all(|d| *d <= cap));
            prop_assert!(at_cap.iter().any(|d| *d != at_cap[0]), "{:?} collapsed onto {:?}", jitter, at_cap[0]);
        }

        #[test]
        fn seeded_sequences_are_reproducible(backoff in any_backoff()) {
            let a: Vec<_> = backoff.delays().unwrap().take(16).collect();
            let b: Vec<_> = backoff.delays().unwrap().take(16).collect();
            prop_assert_eq!(a, b);
        }

        #[test]
        fn proportional_range_holds(base_ms in 1u64..10_000, f in 0.0f64..=1.0, seed in any::<u64>()) {
            let base = Duration::from_millis(base_ms);
            let cap = base * 10;
            let b = Backoff::constant(base).with_max_delay(cap).with_jitter(Jitter::Proportional(f)).with_seed(seed);
            for d in b.delays().unwrap().take(20) {
                prop_assert!(d >= scale(base, 1.0 - f) && d <= scale(base, 1.0 + f));
            }
        }
    }
}
