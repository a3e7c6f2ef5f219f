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
//! | [`Absolute(d)`](Jitter::Absolute) | `U(max(0, base-d), min(max_delay, base+d))` | `[max_delay-d, max_delay]` |
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
//! distinct streams per call. To pin exact values rather than a sequence, supply the draws
//! yourself with [`Backoff::with_random`] (Polly's `Randomizer`): a function returning a uniform
//! draw `u` in `[0, 1]`, which puts each jittered delay at `low + u × (high - low)` of its range.
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

use std::fmt;
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
    /// `U(base - d, base + d)`: plus or minus a fixed duration (failsafe's
    /// `withJitter(Duration)`), the range clipped to `[0, max_delay]`. Any `d` is valid; zero is
    /// no jitter.
    Absolute(Duration),
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
    random: Option<Random>,
}

/// A user's random source, compared by address (the only equality a function has).
#[derive(Clone, Copy)]
struct Random(fn() -> f64);

impl PartialEq for Random {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::fn_addr_eq(self.0, other.0)
    }
}

impl fmt::Debug for Random {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Random(fn)")
    }
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
            random: None,
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

    /// Draws the jitter from `random` instead of staunch's generator: each call returns a
    /// uniform draw `u` in `[0, 1]`, and a jittered delay is `low + u × (high - low)` of its
    /// range, rounded down to the nanosecond (Polly's `Randomizer`). For tests that pin exact
    /// delays, and for programs with their own source of randomness. A draw outside `[0, 1]` is
    /// clamped to it, and NaN counts as 0: a bad source can skew the spread, never break the
    /// bounds. It excludes [`with_seed`](Self::with_seed), which seeds staunch's own generator.
    ///
    /// A plain function, so that `Backoff` stays `Copy`; a source with state keeps it in a
    /// `static` or a `thread_local!`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use staunch::backoff::{Backoff, Jitter};
    ///
    /// fn middle() -> f64 {
    ///     0.5
    /// }
    /// let backoff = Backoff::exponential(Duration::from_millis(100))
    ///     .with_jitter(Jitter::Full)
    ///     .with_random(middle);
    /// let delays: Vec<_> = backoff.delays()?.take(3).collect();
    /// assert_eq!(delays, [50, 100, 200].map(Duration::from_millis));
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub const fn with_random(mut self, random: fn() -> f64) -> Self {
        self.random = Some(Random(random));
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
    /// `max_delay` below `initial`, decorrelated jitter with a zero `initial` (it could never
    /// grow), or both a seed and a random source.
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
        if self.seed.is_some() && self.random.is_some() {
            return Err(ConfigError::new(
                "random",
                "a random source and a seed exclude each other: the seed is for staunch's own generator, which a random source replaces; keep one",
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

    /// Starts the sequence over from its first delay (and, for decorrelated jitter, from
    /// `initial`), keeping the random stream: what a retry does after waiting for a server's
    /// hint, as gRPC's retry design (A6) specifies.
    pub(crate) fn restart(&mut self, config: &Backoff) {
        self.next_retry = 1;
        self.previous = config.initial;
    }

    /// The next delay of the sequence of `config`, which must be the config it was made for.
    pub(crate) fn next(&mut self, config: &Backoff) -> Duration {
        let base = config.base_delay(self.next_retry);
        let delay = match config.jitter {
            Jitter::None => base,
            Jitter::Full => self.uniform(config, Duration::ZERO, base),
            Jitter::Equal => {
                let half = base / 2;
                half + self.uniform(config, Duration::ZERO, base - half)
            }
            Jitter::Proportional(f) => {
                // In floating point, `base * (1 - f)` can round above `base` (one f64 step is
                // 2200 s near Duration::MAX), and so above `max_delay`: the range is clamped to
                // the true order, low <= base <= high <= max_delay (base is already capped).
                let low = scale(base, 1.0 - f).min(base);
                let high = scale(base, 1.0 + f).max(base).min(config.max_delay);
                self.uniform(config, low, high)
            }
            Jitter::Absolute(d) => {
                let low = base.saturating_sub(d);
                let high = base.saturating_add(d).min(config.max_delay);
                self.uniform(config, low, high)
            }
            Jitter::Decorrelated => {
                let upper = config.max_delay.min(self.previous.saturating_mul(3));
                self.uniform(config, config.initial, upper)
            }
        };
        self.previous = delay;
        self.next_retry = self.next_retry.saturating_add(1);
        delay
    }

    /// A uniform draw from `[low, high]` (just `low` if the range is empty), from the user's
    /// random source if `config` has one.
    fn uniform(&mut self, config: &Backoff, low: Duration, high: Duration) -> Duration {
        let Some(span) = high.checked_sub(low).filter(|s| !s.is_zero()) else {
            return low;
        };
        let offset = match (config.random, u64::try_from(span.as_nanos())) {
            // `clamp` keeps a NaN, which `scale` turns into zero.
            (Some(Random(random)), _) => scale(span, random().clamp(0.0, 1.0)).min(span),
            (None, Ok(span_nanos)) => Duration::from_nanos(self.rng.u64(0..=span_nanos)),
            // Spans over 584 years: float precision is plenty.
            (None, Err(_)) => scale(span, self.rng.f64()).min(span),
        };
        low.saturating_add(offset)
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
            (
                Backoff::constant(MS).with_seed(1).with_random(|| 0.5),
                "random",
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
    fn a_restart_begins_the_sequence_again() {
        for jitter in [Jitter::None, Jitter::Decorrelated] {
            let b = Backoff::exponential(100 * MS)
                .with_jitter(jitter)
                .with_seed(3);
            let fresh: Vec<_> = b.delays().unwrap().take(3).collect();
            let mut state = DelayState::new(&b);
            for _ in 0..5 {
                state.next(&b);
            }
            state.restart(&b);
            let first = state.next(&b);
            match jitter {
                Jitter::None => assert_eq!(first, fresh[0]),
                // Drawn from [initial, 3 x initial] again, not from around the last delay.
                _ => assert!((100 * MS..=300 * MS).contains(&first), "{first:?}"),
            }
        }
    }

    std::thread_local! {
        static DRAWS: std::cell::RefCell<std::collections::VecDeque<f64>> =
            const { std::cell::RefCell::new(std::collections::VecDeque::new()) };
    }

    /// The next of the draws a test scripted on this thread (0.5 once they run out).
    fn scripted() -> f64 {
        DRAWS.with(|draws| draws.borrow_mut().pop_front().unwrap_or(0.5))
    }

    /// The first `draws.len()` delays of `backoff` with `draws` as its random source.
    fn with_draws(backoff: Backoff, draws: &[f64]) -> Vec<Duration> {
        DRAWS.with(|d| *d.borrow_mut() = draws.iter().copied().collect());
        backoff
            .with_random(scripted)
            .delays()
            .unwrap()
            .take(draws.len())
            .collect()
    }

    #[test]
    fn a_supplied_random_source_pins_exact_delays() {
        let b = Backoff::exponential(100 * MS).with_max_delay(Duration::from_secs(10));
        let ms = |v: [u64; 4]| v.map(Duration::from_millis).to_vec();
        let draws = [0.0, 0.5, 1.0, 0.25];
        // bases 100, 200, 400, 800
        assert_eq!(
            with_draws(b.with_jitter(Jitter::Full), &draws),
            ms([0, 100, 400, 200])
        );
        assert_eq!(
            with_draws(b.with_jitter(Jitter::Equal), &draws),
            ms([50, 150, 400, 500])
        );
        assert_eq!(
            with_draws(b.with_jitter(Jitter::Proportional(0.5)), &draws),
            ms([50, 200, 600, 600])
        );
        assert_eq!(
            with_draws(b.with_jitter(Jitter::Absolute(30 * MS)), &draws),
            ms([70, 200, 430, 785])
        );
        // U(initial, 3 x previous): [100, 300] -> 100; [100, 300] -> 200; [100, 600] -> 600;
        // [100, 1800] -> 525.
        assert_eq!(
            with_draws(b.with_jitter(Jitter::Decorrelated), &draws),
            ms([100, 200, 600, 525])
        );
        // No jitter draws nothing.
        assert_eq!(
            with_draws(b.with_jitter(Jitter::None), &draws),
            ms([100, 200, 400, 800])
        );
    }

    #[test]
    fn draws_outside_zero_to_one_are_clamped_not_trusted() {
        let b = Backoff::constant(100 * MS).with_jitter(Jitter::Full);
        let draws = [
            f64::NAN,
            -1.0,
            f64::NEG_INFINITY,
            2.0,
            f64::INFINITY,
            1.0 + 1e-9,
        ];
        assert_eq!(
            with_draws(b, &draws),
            [0, 0, 0, 100, 100, 100].map(Duration::from_millis)
        );
    }

    #[test]
    fn absolute_jitter_spreads_by_a_fixed_amount_within_zero_and_max_delay() {
        let b = Backoff::constant(100 * MS).with_max_delay(120 * MS);
        // 100 ms +- 30 ms, the top clipped to the 120 ms cap: [70, 120].
        let near_cap = b.with_jitter(Jitter::Absolute(30 * MS));
        assert_eq!(
            with_draws(near_cap, &[0.0, 1.0, 0.5]),
            [70, 120, 95].map(Duration::from_millis)
        );
        // +- 250 ms cannot go below zero: [0, 120].
        let wide = b.with_jitter(Jitter::Absolute(250 * MS));
        assert_eq!(
            with_draws(wide, &[0.0, 1.0]),
            [0, 120].map(Duration::from_millis)
        );
        for seed in 0..200 {
            for d in wide.with_seed(seed).delays().unwrap().take(5) {
                assert!(d <= 120 * MS);
            }
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

    #[test]
    fn proportional_low_end_never_exceeds_max_delay() {
        // 2^60 + 100 ns rounds up to 2^60 + 128 ns as an f64: scaling the base by (1 - f) with
        // a tiny f gave a low end above the base, and above a max_delay equal to it.
        let cap = Duration::from_nanos((1 << 60) + 100);
        // Near Duration::MAX one f64 step is about 2200 s.
        let near_max = Duration::new(u64::MAX - 1000, 0);
        for (initial, max_delay) in [(cap, cap), (MS, near_max), (near_max, near_max)] {
            for f in [0.0, 1e-18, 1e-12] {
                let backoff = Backoff::exponential(initial)
                    .with_multiplier(1e30)
                    .with_max_delay(max_delay)
                    .with_jitter(Jitter::Proportional(f))
                    .with_seed(1);
                for d in backoff.delays().unwrap().take(5) {
                    assert!(d <= max_delay, "{d:?} > {max_delay:?} with f = {f}");
                }
            }
        }
    }

    /// Durations biased to the ends of their range, where rounding and saturation live.
    fn extreme_duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            Just(Duration::MAX),
            (0u64..1 << 20).prop_map(|back| Duration::MAX - Duration::from_secs(back)),
            (0u32..1_000_000_000).prop_map(|n| Duration::new(u64::MAX, n)),
            (1u64 << 53..u64::MAX).prop_map(Duration::from_nanos),
            (1u64..u64::MAX, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
            Just(Duration::from_nanos(1)),
        ]
    }

    /// Every jitter kind, with proportional factors at and near their bounds.
    fn every_jitter() -> impl Strategy<Value = Jitter> {
        prop_oneof![
            Just(Jitter::None),
            Just(Jitter::Full),
            Just(Jitter::Equal),
            Just(Jitter::Decorrelated),
            prop_oneof![any_duration(), extreme_duration()].prop_map(Jitter::Absolute),
            prop_oneof![
                Just(0.0),
                Just(1.0),
                Just(f64::EPSILON),
                Just(1e-18),
                Just(1.0 - f64::EPSILON),
                0.0f64..=1.0,
            ]
            .prop_map(Jitter::Proportional),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn no_jitter_kind_exceeds_max_delay_at_the_extremes(
            initial in prop_oneof![any_duration(), extreme_duration()],
            max_delay in extreme_duration(),
            kind in 0u8..3,
            // 1 to 1e30, spread over the exponents.
            multiplier in (0.0f64..=30.0).prop_map(|e| 10f64.powf(e)),
            increment in prop_oneof![any_duration(), extreme_duration()],
            jitter in every_jitter(),
            retry in prop_oneof![Just(u32::MAX), Just(u32::MAX - 1), Just(1u32), any::<u32>()],
            previous in prop_oneof![any_duration(), extreme_duration()],
            seed in any::<u64>(),
        ) {
            let initial = initial.max(Duration::from_nanos(1)).min(max_delay);
            let backoff = match kind {
                0 => Backoff::exponential(initial).with_multiplier(multiplier),
                1 => Backoff::linear(initial).with_increment(increment),
                _ => Backoff::constant(initial),
            }
            .with_max_delay(max_delay)
            .with_jitter(jitter)
            .with_seed(seed);
            prop_assert!(backoff.validate().is_ok());
            // Start the sequence deep in, as retry `retry` of a call that has been retrying.
            let mut state = DelayState::new(&backoff);
            state.next_retry = retry;
            state.previous = previous.clamp(initial, max_delay);
            for _ in 0..8 {
                let d = state.next(&backoff);
                prop_assert!(d <= max_delay, "{:?} > {:?} ({:?})", d, max_delay, backoff);
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
            any_duration().prop_map(Jitter::Absolute),
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
                (1u64..1000).prop_map(|n| Jitter::Absolute(Duration::from_millis(n))),
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
