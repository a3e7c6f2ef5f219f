use std::time::Duration;

use crate::ConfigError;

/// The most attempts a hedged call may make, counting the first: gRPC's client-side cap for
/// `hedgingPolicy.maxAttempts`. More copies of one request cut the tail no further (the chance
/// that four copies are all slow is already tiny) and multiply the load when the dependency
/// is slow for everyone.
pub const MAX_ATTEMPTS: u32 = 5;

/// When a hedged call sends its next attempt if no answer has come: a fixed delay, or a
/// percentile of the dependency's recent latencies between a floor and a ceiling. `Copy`;
/// validated by [`Hedge::new`](super::Hedge::new).
///
/// A fixed delay suits a dependency whose latency is known and steady: set it near its p95 and
/// about 5% of calls send a second attempt. An adaptive one follows the dependency as it
/// changes: [`percentile`](Self::percentile)`(95.0)` hedges the calls slower than 95% of recent
/// ones, whatever that is today. Its settings:
///
/// | setting | default |
/// |---|---|
/// | [`with_min`](Self::with_min) (the floor) | 1 ms |
/// | [`with_max`](Self::with_max) (the ceiling) | 1 s |
/// | [`with_min_samples`](Self::with_min_samples) | 100 |
///
/// Until the estimate has `min_samples` latencies, the delay is the ceiling. The estimate is a
/// log-bucketed histogram whose old samples fade (see [`Hedge::delay`](super::Hedge::delay)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::hedge::HedgeDelay;
///
/// let fixed = HedgeDelay::fixed(Duration::from_millis(20));
/// let adaptive = HedgeDelay::percentile(95.0)
///     .with_min(Duration::from_millis(5))
///     .with_max(Duration::from_millis(200));
/// adaptive.validate()?;
/// assert!(HedgeDelay::percentile(100.0).validate().is_err());
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HedgeDelay {
    pub(crate) kind: DelayKind,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum DelayKind {
    Fixed(Duration),
    Percentile {
        percentile: f64,
        min: Duration,
        max: Duration,
        min_samples: u32,
    },
}

impl HedgeDelay {
    /// Sends the next attempt `delay` after the previous one. Zero sends every attempt at once
    /// (backup requests rather than hedges).
    pub const fn fixed(delay: Duration) -> Self {
        Self {
            kind: DelayKind::Fixed(delay),
        }
    }

    /// Sends the next attempt once the call has waited longer than `percentile` (in `(0, 100)`)
    /// of the dependency's recent latencies, clamped to the floor and ceiling.
    pub const fn percentile(percentile: f64) -> Self {
        Self {
            kind: DelayKind::Percentile {
                percentile,
                min: Duration::from_millis(1),
                max: Duration::from_secs(1),
                min_samples: 100,
            },
        }
    }

    /// Sets the floor of an adaptive delay: never hedge sooner than this. A fixed delay ignores
    /// it.
    pub const fn with_min(mut self, min: Duration) -> Self {
        if let DelayKind::Percentile {
            percentile,
            max,
            min_samples,
            ..
        } = self.kind
        {
            self.kind = DelayKind::Percentile {
                percentile,
                min,
                max,
                min_samples,
            };
        }
        self
    }

    /// Sets the ceiling of an adaptive delay: never wait longer than this before hedging, and
    /// the delay used until the estimate has enough samples. A fixed delay ignores it.
    pub const fn with_max(mut self, max: Duration) -> Self {
        if let DelayKind::Percentile {
            percentile,
            min,
            min_samples,
            ..
        } = self.kind
        {
            self.kind = DelayKind::Percentile {
                percentile,
                min,
                max,
                min_samples,
            };
        }
        self
    }

    /// Sets how many latencies an adaptive delay needs before it follows the estimate (the
    /// ceiling applies until then). At least 1. A fixed delay ignores it.
    pub const fn with_min_samples(mut self, min_samples: u32) -> Self {
        if let DelayKind::Percentile {
            percentile,
            min,
            max,
            ..
        } = self.kind
        {
            self.kind = DelayKind::Percentile {
                percentile,
                min,
                max,
                min_samples,
            };
        }
        self
    }

    /// Whether this delay follows the dependency's latencies.
    pub const fn is_adaptive(&self) -> bool {
        matches!(self.kind, DelayKind::Percentile { .. })
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// A percentile outside `(0, 100)`, a floor above the ceiling, or `min_samples` of 0; the
    /// error names the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let DelayKind::Percentile {
            percentile,
            min,
            max,
            min_samples,
        } = self.kind
        else {
            return Ok(());
        };
        if !(percentile > 0.0 && percentile < 100.0) {
            return Err(ConfigError::new(
                "percentile",
                format!(
                    "{percentile} is not allowed; use a percentile in (0, 100): 95 hedges the calls slower than 95% of recent ones"
                ),
            ));
        }
        if min > max {
            return Err(ConfigError::new(
                "min",
                format!(
                    "the floor ({min:?}) is above the ceiling ({max:?}); lower with_min or raise with_max"
                ),
            ));
        }
        if min_samples == 0 {
            return Err(ConfigError::new(
                "min_samples",
                "0 samples cannot estimate a percentile; use at least 1 (100 is the default)",
            ));
        }
        Ok(())
    }
}

/// The settings of a [`Hedge`](super::Hedge): how many attempts a call may make in all, and
/// when each next one goes out. `Copy`; validated once by [`Hedge::new`](super::Hedge::new).
///
/// | setting | default |
/// |---|---|
/// | [`with_max_attempts`](Self::with_max_attempts) | 2: the first attempt and one hedge |
/// | [`with_max_retry_after`](Self::with_max_retry_after) | 60 s |
///
/// With the `serde` feature it reads from configuration as `{ max_attempts = 2, delay = "20ms",
/// max_retry_after = "60s" }` (only `delay` required), an adaptive delay as `delay = {
/// percentile = 95, min = "5ms", max = "200ms", min_samples = 100 }`; unknown keys are errors.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::hedge::{Hedge, HedgeConfig, HedgeDelay};
///
/// let config = HedgeConfig::new(HedgeDelay::fixed(Duration::from_millis(20))).with_max_attempts(3);
/// let hedge = Hedge::new(config)?;
/// assert_eq!(hedge.delay(), Duration::from_millis(20));
///
/// let err = Hedge::new(config.with_max_attempts(6)).unwrap_err();
/// assert_eq!(err.field(), "max_attempts");
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HedgeConfig {
    pub(crate) max_attempts: u32,
    pub(crate) delay: HedgeDelay,
    pub(crate) max_retry_after: Duration,
}

impl HedgeConfig {
    /// Two attempts in all, the second after `delay`.
    pub const fn new(delay: HedgeDelay) -> Self {
        Self {
            max_attempts: 2,
            delay,
            max_retry_after: Duration::from_secs(60),
        }
    }

    /// Sets how many attempts a call may make, counting the first (gRPC's convention), in
    /// `1..=5` ([`MAX_ATTEMPTS`]); 1 hedges nothing.
    pub const fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets the delay before each next attempt.
    pub const fn with_delay(mut self, delay: HedgeDelay) -> Self {
        self.delay = delay;
        self
    }

    /// Sets the longest Retry-After hint to honour. A failed attempt with a hint makes the next
    /// attempt wait for it (gRPC's pushback); a hint longer than this sends no more attempts,
    /// and the call waits for those in flight.
    pub const fn with_max_retry_after(mut self, max_retry_after: Duration) -> Self {
        self.max_retry_after = max_retry_after;
        self
    }

    /// The maximum number of attempts.
    pub const fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The delay before each next attempt.
    pub const fn delay(&self) -> HedgeDelay {
        self.delay
    }

    /// The longest Retry-After hint honoured.
    pub const fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// `max_attempts` outside `1..=5`, or an invalid delay (see [`HedgeDelay::validate`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::new(
                "max_attempts",
                "0 attempts would never call the operation; max_attempts counts the first call, so use 1 to hedge nothing or 2 for one hedge",
            ));
        }
        if self.max_attempts > MAX_ATTEMPTS {
            return Err(ConfigError::new(
                "max_attempts",
                format!(
                    "{} is too many; hedging allows at most {MAX_ATTEMPTS} attempts in all (gRPC's cap): more copies of a request cut the tail no further and multiply the load on a slow dependency",
                    self.max_attempts
                ),
            ));
        }
        self.delay.validate()
    }
}

#[cfg(feature = "serde")]
mod serde_support {
    //! `Deserialize` for [`HedgeDelay`] and [`HedgeConfig`] (feature `serde`): a delay is a
    //! duration string (`"20ms"`) or `{ percentile = 95, min = "5ms", max = "200ms",
    //! min_samples = 100 }`; a config is `{ max_attempts = 2, delay = .., max_retry_after =
    //! "60s" }` with `delay` required.

    use std::fmt;

    use serde::de::{self, Deserializer, MapAccess, Visitor};
    use serde::{Deserialize, de::value::MapAccessDeserializer};

    use super::{HedgeConfig, HedgeDelay};
    use crate::{Dur, parse_duration};

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct PercentileSpec {
        percentile: f64,
        min: Option<Dur>,
        max: Option<Dur>,
        min_samples: Option<u32>,
    }

    impl<'de> Deserialize<'de> for HedgeDelay {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct DelayVisitor;
            impl<'de> Visitor<'de> for DelayVisitor {
                type Value = HedgeDelay;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str(
                        "a duration such as \"20ms\", or { percentile = 95, min = \"5ms\", max = \"200ms\" }",
                    )
                }
                fn visit_str<E: de::Error>(self, text: &str) -> Result<HedgeDelay, E> {
                    parse_duration(text)
                        .map(HedgeDelay::fixed)
                        .map_err(E::custom)
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<HedgeDelay, A::Error> {
                    let spec = PercentileSpec::deserialize(MapAccessDeserializer::new(map))?;
                    let mut delay = HedgeDelay::percentile(spec.percentile);
                    if let Some(Dur(min)) = spec.min {
                        delay = delay.with_min(min);
                    }
                    if let Some(Dur(max)) = spec.max {
                        delay = delay.with_max(max);
                    }
                    if let Some(n) = spec.min_samples {
                        delay = delay.with_min_samples(n);
                    }
                    Ok(delay)
                }
            }
            deserializer.deserialize_any(DelayVisitor)
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct HedgeSpec {
        max_attempts: Option<u32>,
        delay: HedgeDelay,
        max_retry_after: Option<Dur>,
    }

    impl<'de> Deserialize<'de> for HedgeConfig {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let spec = HedgeSpec::deserialize(deserializer)?;
            let mut config = HedgeConfig::new(spec.delay);
            if let Some(n) = spec.max_attempts {
                config = config.with_max_attempts(n);
            }
            if let Some(Dur(max)) = spec.max_retry_after {
                config = config.with_max_retry_after(max);
            }
            Ok(config)
        }
    }

    #[cfg(test)]
    mod tests {
        use std::time::Duration;

        use super::*;

        fn from<T: for<'de> Deserialize<'de>>(json: &str) -> Result<T, String> {
            serde_json::from_str(json).map_err(|e| e.to_string())
        }

        #[test]
        fn a_fixed_delay_is_a_duration_string() {
            let config: HedgeConfig = from(r#"{ "max_attempts": 3, "delay": "20ms" }"#).unwrap();
            assert_eq!(
                config,
                HedgeConfig::new(HedgeDelay::fixed(Duration::from_millis(20))).with_max_attempts(3)
            );
        }

        #[test]
        fn an_adaptive_delay_is_a_table_with_defaults_for_what_is_left_out() {
            let config: HedgeConfig = from(
                r#"{ "delay": { "percentile": 99, "max": "250ms" }, "max_retry_after": "5s" }"#,
            )
            .unwrap();
            assert_eq!(
                config,
                HedgeConfig::new(HedgeDelay::percentile(99.0).with_max(Duration::from_millis(250)))
                    .with_max_retry_after(Duration::from_secs(5))
            );
        }

        #[test]
        fn mistakes_are_named() {
            let missing = from::<HedgeConfig>(r#"{ "max_attempts": 2 }"#).unwrap_err();
            assert!(missing.contains("delay"), "{missing}");
            let unknown = from::<HedgeConfig>(r#"{ "delay": "1ms", "attempts": 2 }"#).unwrap_err();
            assert!(unknown.contains("attempts"), "{unknown}");
            let bad = from::<HedgeDelay>(r#""-5ms""#).unwrap_err();
            assert!(bad.contains("-5ms"), "{bad}");
            let typo = from::<HedgeDelay>(r#"{ "percentile": 95, "floor": "1ms" }"#).unwrap_err();
            assert!(typo.contains("floor"), "{typo}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn invalid_settings_name_the_setting() {
        let fixed = HedgeConfig::new(HedgeDelay::fixed(ms(10)));
        let cases = [
            (fixed.with_max_attempts(0), "max_attempts"),
            (fixed.with_max_attempts(MAX_ATTEMPTS + 1), "max_attempts"),
            (fixed.with_max_attempts(u32::MAX), "max_attempts"),
            (fixed.with_delay(HedgeDelay::percentile(0.0)), "percentile"),
            (
                fixed.with_delay(HedgeDelay::percentile(100.0)),
                "percentile",
            ),
            (
                fixed.with_delay(HedgeDelay::percentile(f64::NAN)),
                "percentile",
            ),
            (fixed.with_delay(HedgeDelay::percentile(-5.0)), "percentile"),
            (
                fixed.with_delay(
                    HedgeDelay::percentile(95.0)
                        .with_min(ms(20))
                        .with_max(ms(10)),
                ),
                "min",
            ),
            (
                fixed.with_delay(HedgeDelay::percentile(95.0).with_min_samples(0)),
                "min_samples",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err();
            assert_eq!(err.field(), field, "{config:?}: {err}");
        }
        assert!(
            fixed
                .with_max_attempts(0)
                .validate()
                .unwrap_err()
                .message()
                .contains("counts the first call")
        );
    }

    #[test]
    fn the_edges_that_are_allowed() {
        for config in [
            HedgeConfig::new(HedgeDelay::fixed(Duration::ZERO)),
            HedgeConfig::new(HedgeDelay::fixed(ms(5))).with_max_attempts(1),
            HedgeConfig::new(HedgeDelay::fixed(ms(5))).with_max_attempts(MAX_ATTEMPTS),
            HedgeConfig::new(HedgeDelay::percentile(0.1)),
            HedgeConfig::new(HedgeDelay::percentile(99.9).with_min(ms(7)).with_max(ms(7))),
        ] {
            assert_eq!(config.validate(), Ok(()), "{config:?}");
        }
    }

    #[test]
    fn a_fixed_delay_ignores_the_adaptive_settings() {
        let delay = HedgeDelay::fixed(ms(5))
            .with_min(ms(50))
            .with_max(ms(1))
            .with_min_samples(0);
        assert_eq!(delay, HedgeDelay::fixed(ms(5)));
        assert!(!delay.is_adaptive());
        assert!(HedgeDelay::percentile(50.0).is_adaptive());
    }
}
