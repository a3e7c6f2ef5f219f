//! [`ChaosConfig`]: what to inject and how often; [`Inject`]: what makes the injected values.

use std::fmt;
use std::time::Duration;

use super::decide::{DelayRange, Rates};
use crate::ConfigError;

/// Makes the value a chaos policy injects: an error, or a substitute result. A fresh one per
/// injection.
///
/// Implemented for every `Fn() -> T`, so a closure is the usual maker; [`NoInjection`] is the
/// maker of a kind that is not configured.
pub trait Inject<T> {
    /// A value to inject, or `None` if this maker makes none.
    fn inject(&self) -> Option<T>;
}

impl<T, F> Inject<T> for F
where
    F: Fn() -> T,
{
    #[inline]
    fn inject(&self) -> Option<T> {
        Some(self())
    }
}

/// The maker of a kind that is not configured: it makes nothing, for any type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoInjection;

impl<T> Inject<T> for NoInjection {
    #[inline]
    fn inject(&self) -> Option<T> {
        None
    }
}

/// What a [`Chaos`](super::Chaos) policy injects, how often, and whether it starts on.
///
/// `E` makes the injected errors and `R` the substitute results (closures, usually; see
/// [`Inject`]). The rates are probabilities per call, drawn independently in a fixed order (see
/// the [module docs](super#how-the-kinds-combine)).
///
/// | setting | default |
/// |---|---|
/// | [`with_error`](Self::with_error) | rate 0: no error |
/// | [`with_delay`](Self::with_delay), [`with_delay_between`](Self::with_delay_between) | rate 0: no delay |
/// | [`with_result`](Self::with_result) | rate 0: no substitute |
/// | [`with_enabled`](Self::with_enabled) | `true`: injects as soon as it is built |
/// | [`with_seed`](Self::with_seed) | none: a seed from `fastrand`'s thread-local generator |
/// | [`with_name`](Self::with_name) | `"default"` |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::chaos::ChaosConfig;
///
/// let config = ChaosConfig::new()
///     .with_error(0.05, || std::io::Error::other("injected"))
///     .with_delay_between(0.2, Duration::from_millis(100), Duration::from_millis(900))
///     .with_seed(7);
/// config.validate()?;
/// assert_eq!(config.error_rate(), 0.05);
///
/// let err = ChaosConfig::new().with_delay(1.5, Duration::from_secs(1)).validate().unwrap_err();
/// assert_eq!(err.field(), "delay_rate");
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Copy)]
pub struct ChaosConfig<E = NoInjection, R = NoInjection> {
    pub(super) enabled: bool,
    pub(super) error_rate: f64,
    pub(super) error: E,
    pub(super) has_error: bool,
    pub(super) delay_rate: f64,
    pub(super) delay: DelayRange,
    pub(super) result_rate: f64,
    pub(super) result: R,
    pub(super) has_result: bool,
    pub(super) seed: Option<u64>,
    pub(super) name: &'static str,
}

impl ChaosConfig {
    /// A policy that injects nothing until kinds are added, and is on.
    pub const fn new() -> Self {
        Self {
            enabled: true,
            error_rate: 0.0,
            error: NoInjection,
            has_error: false,
            delay_rate: 0.0,
            delay: DelayRange {
                min: Duration::ZERO,
                max: Duration::ZERO,
            },
            result_rate: 0.0,
            result: NoInjection,
            has_result: false,
            seed: None,
            name: "default",
        }
    }
}

impl Default for ChaosConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl<E, R> ChaosConfig<E, R> {
    /// Replaces a share `rate` of calls (in `[0, 1]`) with an error made by `error`, returned at
    /// once without calling. The error has the operation's own error type, so the policies
    /// around the call classify and count it as they would a real one.
    pub fn with_error<E2>(self, rate: f64, error: E2) -> ChaosConfig<E2, R> {
        ChaosConfig {
            enabled: self.enabled,
            error_rate: rate,
            error,
            has_error: true,
            delay_rate: self.delay_rate,
            delay: self.delay,
            result_rate: self.result_rate,
            result: self.result,
            has_result: self.has_result,
            seed: self.seed,
            name: self.name,
        }
    }

    /// Delays a share `rate` of calls (in `[0, 1]`) by `delay` before they run (or before their
    /// substitute comes back). The delay sleeps on tokio's clock.
    pub const fn with_delay(self, rate: f64, delay: Duration) -> Self {
        self.with_delay_between(rate, delay, delay)
    }

    /// Delays a share `rate` of calls (in `[0, 1]`) by a delay drawn uniformly from
    /// `[min, max]` (to the nanosecond; `min` must not exceed `max`).
    pub const fn with_delay_between(mut self, rate: f64, min: Duration, max: Duration) -> Self {
        self.delay_rate = rate;
        self.delay = DelayRange { min, max };
        self
    }

    /// Replaces a share `rate` of calls (in `[0, 1]`) with a substitute success made by
    /// `result`, without calling (after the delay, if one is drawn too). A substitute that the
    /// classifier counts as a failure (an HTTP 503 response, say) is retried and counted as one.
    pub fn with_result<R2>(self, rate: f64, result: R2) -> ChaosConfig<E, R2> {
        ChaosConfig {
            enabled: self.enabled,
            error_rate: self.error_rate,
            error: self.error,
            has_error: self.has_error,
            delay_rate: self.delay_rate,
            delay: self.delay,
            result_rate: rate,
            result,
            has_result: true,
            seed: self.seed,
            name: self.name,
        }
    }

    /// Whether the policy injects from the start (default `true`). Build it off in production
    /// code and turn it on from a test or an admin endpoint with its
    /// [`ChaosSwitch`](super::ChaosSwitch).
    pub const fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Fixes the random sequence: the `n`-th call draws what
    /// [`decide_keyed(n)`](super::Chaos::decide_keyed) draws, so a test sees the same
    /// injections on every run. Unset, the seed comes from `fastrand`'s thread-local generator.
    pub const fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Names the policy in `tracing` events (field `chaos`) and `metrics` labels (label
    /// `policy`). Default:
    /// `"default"`.
    pub const fn with_name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Whether the policy starts on.
    pub const fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The share of calls replaced by an error.
    pub const fn error_rate(&self) -> f64 {
        self.error_rate
    }

    /// The share of calls delayed.
    pub const fn delay_rate(&self) -> f64 {
        self.delay_rate
    }

    /// The shortest and the longest injected delay.
    pub const fn delay_range(&self) -> (Duration, Duration) {
        (self.delay.min, self.delay.max)
    }

    /// The share of calls replaced by a substitute.
    pub const fn result_rate(&self) -> f64 {
        self.result_rate
    }

    /// The seed, if fixed.
    pub const fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// The name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    pub(super) fn rates(&self) -> Rates {
        Rates {
            error: self.error_rate,
            delay: self.delay_rate,
            result: self.result_rate,
        }
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// A rate that is not a number in `[0, 1]` (field `error_rate`, `delay_rate` or
    /// `result_rate`), or a delay range whose shortest delay is longer than its longest (field
    /// `delay`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_rate("error_rate", self.error_rate)?;
        check_rate("delay_rate", self.delay_rate)?;
        check_rate("result_rate", self.result_rate)?;
        if self.delay.min > self.delay.max {
            return Err(ConfigError::new(
                "delay",
                format!(
                    "the shortest delay ({:?}) is longer than the longest ({:?}); swap them",
                    self.delay.min, self.delay.max
                ),
            ));
        }
        Ok(())
    }
}

/// Checks that `rate` is a probability.
pub(super) fn check_rate(field: &'static str, rate: f64) -> Result<(), ConfigError> {
    if (0.0..=1.0).contains(&rate) {
        return Ok(());
    }
    Err(ConfigError::new(
        field,
        format!(
            "{rate} is not allowed; a rate is the probability of injecting into a call, a \
             number in [0, 1] (0.01 injects into 1% of calls)"
        ),
    ))
}

impl<E, R> fmt::Debug for ChaosConfig<E, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosConfig")
            .field("enabled", &self.enabled)
            .field("error_rate", &self.error_rate)
            .field("delay_rate", &self.delay_rate)
            .field("delay", &(self.delay.min..=self.delay.max))
            .field("result_rate", &self.result_rate)
            .field("seed", &self.seed)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_rates_and_ranges_name_their_setting() {
        let ms = Duration::from_millis;
        // (error rate, delay rate, delay range, result rate, the field at fault)
        let table = [
            (1.01, 0.0, (ms(1), ms(1)), 0.0, "error_rate"),
            (-0.1, 0.0, (ms(1), ms(1)), 0.0, "error_rate"),
            (f64::NAN, 0.0, (ms(1), ms(1)), 0.0, "error_rate"),
            (0.0, f64::NAN, (ms(1), ms(1)), 0.0, "delay_rate"),
            (0.0, 2.0, (ms(1), ms(1)), 0.0, "delay_rate"),
            (0.0, 0.0, (ms(1), ms(1)), f64::INFINITY, "result_rate"),
            (0.0, 0.0, (ms(1), ms(1)), -1e-9, "result_rate"),
            (0.0, 0.5, (ms(9), ms(3)), 0.0, "delay"),
            // Valid: a range that is one point, a negative zero, the bounds.
            (1.0, -0.0, (ms(3), ms(3)), 1.0, ""),
        ];
        for (error, delay, (min, max), result, field) in table {
            let config = ChaosConfig::new()
                .with_error(error, || 0)
                .with_delay_between(delay, min, max)
                .with_result(result, || 0);
            match config.validate() {
                Ok(()) => assert_eq!(field, "", "{config:?} passed"),
                Err(err) => {
                    assert_eq!(err.field(), field, "{config:?}: {err}");
                    assert!(err.message().contains("swap") || err.message().contains("[0, 1]"));
                }
            }
        }
    }

    #[test]
    fn the_bounds_are_allowed() {
        ChaosConfig::new()
            .with_error(0.0, || ())
            .with_delay_between(1.0, Duration::ZERO, Duration::MAX)
            .with_result(1.0, || ())
            .validate()
            .unwrap();
    }
}
