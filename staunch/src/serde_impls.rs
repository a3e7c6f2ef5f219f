//! `Deserialize` for the configuration types (feature `serde`), so that a policy can live in a
//! config file.
//!
//! Each type is read through a private "spec" struct that rejects unknown fields and then calls
//! the type's public constructor and `with_*` setters, so a file can say exactly what code can,
//! and nothing the setters would silently ignore (a `multiplier` on a constant backoff is an
//! error here). Range checks stay where they are: [`Retry::new`](crate::Retry::new),
//! [`CircuitBreaker::new`](crate::CircuitBreaker::new), [`RetryBudget::new`](crate::retry::RetryBudget::new)
//! and [`AttemptTimeout::validate`] report them with the name of the setting.
//!
//! Durations are strings: a number and a unit, `"250ms"`, `"1.5s"`, `"2m"` (units `ns`, `us`,
//! `ms`, `s`, `m`, `h`).
//!
//! | type | TOML |
//! |---|---|
//! | [`Jitter`] | `"none"`, `"full"`, `"equal"`, `"decorrelated"`, `{ proportional = 0.2 }` or `{ absolute = "100ms" }` |
//! | [`Backoff`] | `{ kind = "exponential", initial = "100ms", multiplier = 2.0, max_delay = "10s", jitter = "full", seed = 7 }`; `kind = "linear"` takes `increment`, `kind = "constant"` neither; a random source ([`Backoff::with_random`]) is code, not configuration |
//! | [`RetryConfig`] | `{ max_attempts = 3, backoff = {..}, max_retry_after = "60s", max_duration = "10s", first_attempt_timed = false }`, each optional (defaults of [`RetryConfig::new`]) |
//! | [`BudgetConfig`] | `{ kind = "token_bucket", max_tokens = 10, token_ratio = 0.1 }` or `{ kind = "ratio", ratio = 0.1, min_per_second = 10, window = "10s" }` |
//! | [`BreakerConfig`] | `{ rule = "consecutive_failures", failures = 5, open_duration = "30s" }`, `rule = "failure_rate_count"` (`failure_rate`, `window_size`), `"failure_rate_time"` (`failure_rate`, `window`, `buckets`), `"failure_count_time"` (`failures`, `window`, `buckets`), `"slow_call_rate"` (`slow_call_rate`, `slow_call_duration`, `window_size`); all rules take `open_duration` or `open_backoff`, `half_open_probes`, `successes_to_close`, `successes_out_of`, `probe_lease`, `half_open_max_wait`, `count_reset_interval`, `disabled` (a bool), `automatic_half_open` (a bool; feature `tokio`); window rules take `minimum_calls`, and `failure_count` (except `failure_count_time`, whose `failures` it is) |
//! | [`AttemptTimeout`] | `{ fixed = "500ms" }` or `{ fraction = 0.25, min = "50ms", max = "500ms" }` |
//! | [`LimitConfig`] | `{ kind = "fixed", limit = 20 }`, `kind = "aimd"` (`initial_limit`, `min_limit`, `max_limit`, `backoff_ratio`, `timeout`), `"vegas"` (`initial_limit`, `min_limit`, `max_concurrency`, `smoothing`, `alpha`, `beta`, `probe_multiplier`, `seed`), `"gradient2"` (`initial_limit`, `min_limit`, `max_concurrency`, `smoothing`, `queue_size`, `long_window`, `rtt_tolerance`); every kind takes `max_queue` and `max_wait`; the adaptive settings default to Netflix's |
//! | [`ThrottleConfig`] | `{ k = 2.0, window = "2m", buckets = 120, seed = 7 }`, each optional |
//! | `RateConfig` (feature `rate-limit`) | `{ calls = 100, period = "1s", burst = 10, max_wait = "50ms" }`; `burst` and `max_wait` optional |

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, de::value::MapAccessDeserializer};

use crate::backoff::{Backoff, Jitter};
use crate::breaker::BreakerConfig;
use crate::deadline::AttemptTimeout;
use crate::limit::{Aimd, Gradient2, LimitConfig, ThrottleConfig, Vegas};
use crate::retry::{BudgetConfig, RetryConfig};

/// Parses `"250ms"`, `"1.5s"`, `"2m"`: digits, an optional fraction, and a unit (`ns`, `us`,
/// `ms`, `s`, `m`, `h`), with no sign, space or exponent: the grammar of every duration in
/// staunch's deserialised configuration, for programs that read their own files the same way.
///
/// # Errors
///
/// A message that names the value and says how to write one.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(staunch::parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(staunch::parse_duration("-1s").unwrap_err().contains("\"-1s\""));
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| {
        format!(
            "invalid duration {text:?}: {why}; write a number and a unit (ns, us, ms, s, m, h), such as \"250ms\", \"1.5s\" or \"2m\""
        )
    };
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| bad("the unit is missing"))?;
    let (number, unit) = text.split_at(split);
    let unit_nanos: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ if unit.starts_with('-') || number.is_empty() && unit.starts_with('+') => {
            return Err(bad("a duration cannot be negative or signed"));
        }
        _ => return Err(bad(&format!("unknown unit {unit:?}"))),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || (number.contains('.') && fraction.is_empty()) {
        return Err(bad("the number is malformed"));
    }
    if fraction.contains('.') || fraction.len() > 18 {
        return Err(bad("the number is malformed"));
    }
    let whole: u128 = whole.parse().map_err(|_| bad("the number is too large"))?;
    let mut nanos = whole
        .checked_mul(unit_nanos)
        .ok_or_else(|| bad("the duration is too long"))?;
    if !fraction.is_empty() {
        let scale = 10u128.pow(fraction.len() as u32);
        let digits: u128 = fraction
            .parse()
            .map_err(|_| bad("the number is malformed"))?;
        let part = digits * unit_nanos;
        if !part.is_multiple_of(scale) {
            return Err(bad("it is finer than a nanosecond"));
        }
        nanos = nanos
            .checked_add(part / scale)
            .ok_or_else(|| bad("the duration is too long"))?;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| bad("the duration is too long"))?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// A duration written as a string (`"250ms"`, `"1.5s"`, `"2m"`), as [`parse_duration`] reads
/// it: for programs whose own configuration files take durations the way staunch's do.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::Dur;
///
/// #[derive(serde::Deserialize)]
/// struct Load {
///     period: Dur,
/// }
/// let load: Load = serde_json::from_str(r#"{ "period": "1.5s" }"#).unwrap();
/// assert_eq!(load.period.0, Duration::from_millis(1500));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurVisitor;
        impl Visitor<'_> for DurVisitor {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"250ms\", \"1.5s\" or \"2m\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Dur, E> {
                parse_duration(text).map(Dur).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(DurVisitor)
    }
}

fn dur(d: Option<Dur>) -> Option<Duration> {
    d.map(|Dur(d)| d)
}

/// An error for a field that the chosen kind does not take.
fn not_for<E: de::Error>(field: &str, kind: &str) -> E {
    E::custom(format!("`{field}` does not apply to {kind}; remove it"))
}

fn required<T, E: de::Error>(value: Option<T>, field: &str, kind: &str) -> Result<T, E> {
    value.ok_or_else(|| E::custom(format!("{kind} needs `{field}`")))
}

impl<'de> Deserialize<'de> for Jitter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FactorSpec {
            proportional: Option<f64>,
            absolute: Option<Dur>,
        }

        struct JitterVisitor;
        impl<'de> Visitor<'de> for JitterVisitor {
            type Value = Jitter;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "\"none\", \"full\", \"equal\", \"decorrelated\", { proportional = FACTOR } or { absolute = DURATION }",
                )
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Jitter, E> {
                match name {
                    "none" => Ok(Jitter::None),
                    "full" => Ok(Jitter::Full),
                    "equal" => Ok(Jitter::Equal),
                    "decorrelated" => Ok(Jitter::Decorrelated),
                    "proportional" => Err(E::custom(
                        "proportional jitter needs a factor: write { proportional = 0.2 }",
                    )),
                    "absolute" => Err(E::custom(
                        "absolute jitter needs a duration: write { absolute = \"100ms\" }",
                    )),
                    other => Err(E::custom(format!(
                        "unknown jitter {other:?}; use \"none\", \"full\", \"equal\", \"decorrelated\", {{ proportional = 0.2 }} or {{ absolute = \"100ms\" }}"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Jitter, A::Error> {
                let spec = FactorSpec::deserialize(MapAccessDeserializer::new(map))?;
                match (spec.proportional, dur(spec.absolute)) {
                    (Some(factor), None) => Ok(Jitter::Proportional(factor)),
                    (None, Some(spread)) => Ok(Jitter::Absolute(spread)),
                    _ => Err(de::Error::custom(
                        "a jitter table takes exactly one of `proportional` (a factor) or `absolute` (a duration)",
                    )),
                }
            }
        }
        deserializer.deserialize_any(JitterVisitor)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum BackoffKind {
    Exponential,
    Linear,
    Constant,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackoffSpec {
    kind: BackoffKind,
    initial: Dur,
    multiplier: Option<f64>,
    increment: Option<Dur>,
    max_delay: Option<Dur>,
    jitter: Option<Jitter>,
    seed: Option<u64>,
}

impl<'de> Deserialize<'de> for Backoff {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spec = BackoffSpec::deserialize(deserializer)?;
        let initial = spec.initial.0;
        let mut backoff = match spec.kind {
            BackoffKind::Exponential => {
                if spec.increment.is_some() {
                    return Err(not_for("increment", "an exponential backoff"));
                }
                let backoff = Backoff::exponential(initial);
                match spec.multiplier {
                    Some(m) => backoff.with_multiplier(m),
                    None => backoff,
                }
            }
            BackoffKind::Linear => {
                if spec.multiplier.is_some() {
                    return Err(not_for("multiplier", "a linear backoff"));
                }
                let backoff = Backoff::linear(initial);
                match dur(spec.increment) {
                    Some(increment) => backoff.with_increment(increment),
                    None => backoff,
                }
            }
            BackoffKind::Constant => {
                if spec.multiplier.is_some() {
                    return Err(not_for("multiplier", "a constant backoff"));
                }
                if spec.increment.is_some() {
                    return Err(not_for("increment", "a constant backoff"));
                }
                Backoff::constant(initial)
            }
        };
        if let Some(max_delay) = dur(spec.max_delay) {
            backoff = backoff.with_max_delay(max_delay);
        }
        if let Some(jitter) = spec.jitter {
            backoff = backoff.with_jitter(jitter);
        }
        if let Some(seed) = spec.seed {
            backoff = backoff.with_seed(seed);
        }
        Ok(backoff)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetrySpec {
    max_attempts: Option<u32>,
    backoff: Option<Backoff>,
    max_retry_after: Option<Dur>,
    max_duration: Option<Dur>,
    first_attempt_timed: Option<bool>,
}

impl<'de> Deserialize<'de> for RetryConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spec = RetrySpec::deserialize(deserializer)?;
        let mut config = RetryConfig::new();
        if let Some(n) = spec.max_attempts {
            config = config.with_max_attempts(n);
        }
        if let Some(backoff) = spec.backoff {
            config = config.with_backoff(backoff);
        }
        if let Some(max) = dur(spec.max_retry_after) {
            config = config.with_max_retry_after(max);
        }
        if let Some(max) = dur(spec.max_duration) {
            config = config.with_max_duration(max);
        }
        if let Some(timed) = spec.first_attempt_timed {
            config = config.with_first_attempt_timed(timed);
        }
        Ok(config)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum BudgetKind {
    TokenBucket,
    Ratio,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetSpec {
    kind: BudgetKind,
    max_tokens: Option<u32>,
    token_ratio: Option<f64>,
    ratio: Option<f64>,
    min_per_second: Option<u32>,
    window: Option<Dur>,
}

impl<'de> Deserialize<'de> for BudgetConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spec = BudgetSpec::deserialize(deserializer)?;
        match spec.kind {
            BudgetKind::TokenBucket => {
                const KIND: &str = "a token_bucket budget";
                for (field, set) in [
                    ("ratio", spec.ratio.is_some()),
                    ("min_per_second", spec.min_per_second.is_some()),
                    ("window", spec.window.is_some()),
                ] {
                    if set {
                        return Err(not_for(field, KIND));
                    }
                }
                Ok(BudgetConfig::token_bucket(
                    required(spec.max_tokens, "max_tokens", KIND)?,
                    required(spec.token_ratio, "token_ratio", KIND)?,
                ))
            }
            BudgetKind::Ratio => {
                const KIND: &str = "a ratio budget";
                if spec.max_tokens.is_some() {
                    return Err(not_for("max_tokens", KIND));
                }
                if spec.token_ratio.is_some() {
                    return Err(not_for("token_ratio", KIND));
                }
                let mut config = BudgetConfig::ratio(required(spec.ratio, "ratio", KIND)?);
                if let Some(min) = spec.min_per_second {
                    config = config.with_min_per_second(min);
                }
                if let Some(window) = dur(spec.window) {
                    config = config.with_window(window);
                }
                Ok(config)
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum BreakerRule {
    ConsecutiveFailures,
    FailureRateCount,
    FailureRateTime,
    FailureCountTime,
    SlowCallRate,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BreakerSpec {
    rule: BreakerRule,
    failures: Option<u32>,
    failure_rate: Option<f64>,
    failure_count: Option<u32>,
    window_size: Option<u32>,
    window: Option<Dur>,
    buckets: Option<u32>,
    minimum_calls: Option<u32>,
    slow_call_rate: Option<f64>,
    slow_call_duration: Option<Dur>,
    open_duration: Option<Dur>,
    open_backoff: Option<Backoff>,
    half_open_probes: Option<u32>,
    successes_to_close: Option<u32>,
    successes_out_of: Option<u32>,
    probe_lease: Option<Dur>,
    half_open_max_wait: Option<Dur>,
    count_reset_interval: Option<Dur>,
    disabled: Option<bool>,
    automatic_half_open: Option<bool>,
}

impl BreakerSpec {
    fn build<E: de::Error>(self) -> Result<BreakerConfig, E> {
        let kind = match self.rule {
            BreakerRule::ConsecutiveFailures => "rule = \"consecutive_failures\"",
            BreakerRule::FailureRateCount => "rule = \"failure_rate_count\"",
            BreakerRule::FailureRateTime => "rule = \"failure_rate_time\"",
            BreakerRule::FailureCountTime => "rule = \"failure_count_time\"",
            BreakerRule::SlowCallRate => "rule = \"slow_call_rate\"",
        };
        let reject = |field: &str, set: bool| {
            if set {
                Err(not_for(field, kind))
            } else {
                Ok(())
            }
        };
        let slow = match (self.slow_call_rate, dur(self.slow_call_duration)) {
            (Some(rate), Some(slow)) => Some((rate, slow)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(E::custom("`slow_call_rate` needs `slow_call_duration`"));
            }
            (None, Some(_)) => {
                return Err(E::custom("`slow_call_duration` needs `slow_call_rate`"));
            }
        };
        let mut config = match self.rule {
            BreakerRule::ConsecutiveFailures => {
                reject("failure_rate", self.failure_rate.is_some())?;
                reject("window_size", self.window_size.is_some())?;
                reject("window", self.window.is_some())?;
                reject("buckets", self.buckets.is_some())?;
                reject("minimum_calls", self.minimum_calls.is_some())?;
                reject("slow_call_rate", slow.is_some())?;
                reject("failure_count", self.failure_count.is_some())?;
                BreakerConfig::consecutive_failures(required(self.failures, "failures", kind)?)
            }
            BreakerRule::FailureRateCount | BreakerRule::SlowCallRate => {
                reject("failures", self.failures.is_some())?;
                reject("window", self.window.is_some())?;
                reject("buckets", self.buckets.is_some())?;
                let size = required(self.window_size, "window_size", kind)?;
                let config = if let BreakerRule::SlowCallRate = self.rule {
                    let (rate, slow) =
                        required(slow, "slow_call_rate` and `slow_call_duration", kind)?;
                    let config = BreakerConfig::slow_call_rate(rate, slow, size);
                    match self.failure_rate {
                        Some(rate) => config.with_failure_rate(rate),
                        None => config,
                    }
                } else {
                    let rate = required(self.failure_rate, "failure_rate", kind)?;
                    let config = BreakerConfig::failure_rate_count(rate, size);
                    match slow {
                        Some((rate, slow)) => config.with_slow_calls(slow, rate),
                        None => config,
                    }
                };
                match self.minimum_calls {
                    Some(min) => config.with_minimum_calls(min),
                    None => config,
                }
            }
            BreakerRule::FailureRateTime | BreakerRule::FailureCountTime => {
                reject("window_size", self.window_size.is_some())?;
                let window = required(dur(self.window), "window", kind)?;
                let mut config = if let BreakerRule::FailureCountTime = self.rule {
                    reject("failure_count", self.failure_count.is_some())?;
                    let failures = required(self.failures, "failures", kind)?;
                    let config = BreakerConfig::failure_count_time(failures, window);
                    match self.failure_rate {
                        Some(rate) => config.with_failure_rate(rate),
                        None => config,
                    }
                } else {
                    reject("failures", self.failures.is_some())?;
                    let rate = required(self.failure_rate, "failure_rate", kind)?;
                    BreakerConfig::failure_rate_time(rate, window)
                };
                if let Some((rate, slow)) = slow {
                    config = config.with_slow_calls(slow, rate);
                }
                if let Some(buckets) = self.buckets {
                    config = config.with_buckets(buckets);
                }
                match self.minimum_calls {
                    Some(min) => config.with_minimum_calls(min),
                    None => config,
                }
            }
        };
        match (dur(self.open_duration), self.open_backoff) {
            (Some(_), Some(_)) => {
                return Err(E::custom(
                    "`open_duration` and `open_backoff` exclude each other; keep one",
                ));
            }
            (Some(open), None) => config = config.with_open_duration(open),
            (None, Some(backoff)) => config = config.with_open_backoff(backoff),
            (None, None) => {}
        }
        if let Some(probes) = self.half_open_probes {
            config = config.with_half_open_probes(probes);
        }
        if let Some(failures) = self.failure_count {
            config = config.with_failure_count(failures);
        }
        match (self.successes_to_close, self.successes_out_of) {
            (successes, Some(probes)) => {
                config = config.with_successes_to_close_out_of(successes.unwrap_or(1), probes);
            }
            (Some(successes), None) => config = config.with_successes_to_close(successes),
            (None, None) => {}
        }
        if let Some(lease) = dur(self.probe_lease) {
            config = config.with_probe_lease(lease);
        }
        if let Some(wait) = dur(self.half_open_max_wait) {
            config = config.with_half_open_max_wait(wait);
        }
        if let Some(interval) = dur(self.count_reset_interval) {
            config = config.with_count_reset_interval(interval);
        }
        if let Some(disabled) = self.disabled {
            config = config.with_disabled(disabled);
        }
        if let Some(automatic) = self.automatic_half_open {
            config = automatic_half_open(config, automatic)?;
        }
        Ok(config)
    }
}

#[cfg(feature = "tokio")]
fn automatic_half_open<E: de::Error>(config: BreakerConfig, on: bool) -> Result<BreakerConfig, E> {
    Ok(config.with_automatic_half_open(on))
}

#[cfg(not(feature = "tokio"))]
fn automatic_half_open<E: de::Error>(config: BreakerConfig, on: bool) -> Result<BreakerConfig, E> {
    if on {
        Err(E::custom(
            "`automatic_half_open` needs staunch's `tokio` feature (its timer is a tokio task); enable the feature or remove the key",
        ))
    } else {
        Ok(config)
    }
}

impl<'de> Deserialize<'de> for BreakerConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BreakerSpec::deserialize(deserializer)?.build()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttemptTimeoutSpec {
    fixed: Option<Dur>,
    fraction: Option<f64>,
    min: Option<Dur>,
    max: Option<Dur>,
}

impl<'de> Deserialize<'de> for AttemptTimeout {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spec = AttemptTimeoutSpec::deserialize(deserializer)?;
        let mut timeout = match (dur(spec.fixed), spec.fraction) {
            (Some(fixed), None) => AttemptTimeout::fixed(fixed),
            (None, Some(fraction)) => AttemptTimeout::fraction(fraction),
            _ => {
                return Err(de::Error::custom(
                    "an attempt timeout needs exactly one of `fixed` (a duration) or `fraction` (of the remaining deadline)",
                ));
            }
        };
        if let Some(min) = dur(spec.min) {
            timeout = timeout.with_min(min);
        }
        if let Some(max) = dur(spec.max) {
            timeout = timeout.with_max(max);
        }
        Ok(timeout)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum LimitKind {
    Fixed,
    Aimd,
    Vegas,
    Gradient2,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitSpec {
    kind: LimitKind,
    limit: Option<u32>,
    initial_limit: Option<u32>,
    min_limit: Option<u32>,
    max_limit: Option<u32>,
    max_concurrency: Option<u32>,
    backoff_ratio: Option<f64>,
    timeout: Option<Dur>,
    smoothing: Option<f64>,
    alpha: Option<u32>,
    beta: Option<u32>,
    probe_multiplier: Option<u32>,
    seed: Option<u64>,
    queue_size: Option<u32>,
    long_window: Option<u32>,
    rtt_tolerance: Option<f64>,
    max_queue: Option<u32>,
    max_wait: Option<Dur>,
}

impl LimitSpec {
    /// Rejects the fields that `kind` does not take.
    fn only<E: de::Error>(&self, kind: &str, allowed: &[&str]) -> Result<(), E> {
        let set = [
            ("limit", self.limit.is_some()),
            ("initial_limit", self.initial_limit.is_some()),
            ("min_limit", self.min_limit.is_some()),
            ("max_limit", self.max_limit.is_some()),
            ("max_concurrency", self.max_concurrency.is_some()),
            ("backoff_ratio", self.backoff_ratio.is_some()),
            ("timeout", self.timeout.is_some()),
            ("smoothing", self.smoothing.is_some()),
            ("alpha", self.alpha.is_some()),
            ("beta", self.beta.is_some()),
            ("probe_multiplier", self.probe_multiplier.is_some()),
            ("seed", self.seed.is_some()),
            ("queue_size", self.queue_size.is_some()),
            ("long_window", self.long_window.is_some()),
            ("rtt_tolerance", self.rtt_tolerance.is_some()),
        ];
        match set
            .iter()
            .find(|(field, is_set)| *is_set && !allowed.contains(field))
        {
            Some((field, _)) => Err(not_for(field, kind)),
            None => Ok(()),
        }
    }
}

impl<'de> Deserialize<'de> for LimitConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spec = LimitSpec::deserialize(deserializer)?;
        let mut config = match spec.kind {
            LimitKind::Fixed => {
                const KIND: &str = "a fixed limit";
                spec.only(KIND, &["limit"])?;
                LimitConfig::fixed(required(spec.limit, "limit", KIND)?)
            }
            LimitKind::Aimd => {
                spec.only(
                    "an aimd limit",
                    &[
                        "initial_limit",
                        "min_limit",
                        "max_limit",
                        "backoff_ratio",
                        "timeout",
                    ],
                )?;
                let mut aimd = Aimd::new();
                if let Some(v) = spec.initial_limit {
                    aimd = aimd.with_initial_limit(v);
                }
                if let Some(v) = spec.min_limit {
                    aimd = aimd.with_min_limit(v);
                }
                if let Some(v) = spec.max_limit {
                    aimd = aimd.with_max_limit(v);
                }
                if let Some(v) = spec.backoff_ratio {
                    aimd = aimd.with_backoff_ratio(v);
                }
                if let Some(v) = dur(spec.timeout) {
                    aimd = aimd.with_timeout(v);
                }
                LimitConfig::aimd(aimd)
            }
            LimitKind::Vegas => {
                spec.only(
                    "a vegas limit",
                    &[
                        "initial_limit",
                        "min_limit",
                        "max_concurrency",
                        "smoothing",
                        "alpha",
                        "beta",
                        "probe_multiplier",
                        "seed",
                    ],
                )?;
                let mut vegas = Vegas::new();
                if let Some(v) = spec.initial_limit {
                    vegas = vegas.with_initial_limit(v);
                }
                if let Some(v) = spec.min_limit {
                    vegas = vegas.with_min_limit(v);
                }
                if let Some(v) = spec.max_concurrency {
                    vegas = vegas.with_max_concurrency(v);
                }
                if let Some(v) = spec.smoothing {
                    vegas = vegas.with_smoothing(v);
                }
                if let Some(v) = spec.alpha {
                    vegas = vegas.with_alpha(v);
                }
                if let Some(v) = spec.beta {
                    vegas = vegas.with_beta(v);
                }
                if let Some(v) = spec.probe_multiplier {
                    vegas = vegas.with_probe_multiplier(v);
                }
                if let Some(v) = spec.seed {
                    vegas = vegas.with_seed(v);
                }
                LimitConfig::vegas(vegas)
            }
            LimitKind::Gradient2 => {
                spec.only(
                    "a gradient2 limit",
                    &[
                        "initial_limit",
                        "min_limit",
                        "max_concurrency",
                        "smoothing",
                        "queue_size",
                        "long_window",
                        "rtt_tolerance",
                    ],
                )?;
                let mut gradient = Gradient2::new();
                if let Some(v) = spec.initial_limit {
                    gradient = gradient.with_initial_limit(v);
                }
                if let Some(v) = spec.min_limit {
                    gradient = gradient.with_min_limit(v);
                }
                if let Some(v) = spec.max_concurrency {
                    gradient = gradient.with_max_concurrency(v);
                }
                if let Some(v) = spec.smoothing {
                    gradient = gradient.with_smoothing(v);
                }
                if let Some(v) = spec.queue_size {
                    gradient = gradient.with_queue_size(v);
                }
                if let Some(v) = spec.long_window {
                    gradient = gradient.with_long_window(v);
                }
                if let Some(v) = spec.rtt_tolerance {
                    gradient = gradient.with_rtt_tolerance(v);
                }
                LimitConfig::gradient2(gradient)
            }
        };
        if let Some(max_queue) = spec.max_queue {
            config = config.with_max_queue(max_queue);
        }
        if let Some(max_wait) = dur(spec.max_wait) {
            config = config.with_max_wait(max_wait);
        }
        Ok(config)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThrottleSpec {
    k: Option<f64>,
    window: Option<Dur>,
    buckets: Option<u32>,
    seed: Option<u64>,
}

impl<'de> Deserialize<'de> for ThrottleConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spec = ThrottleSpec::deserialize(deserializer)?;
        let mut config = ThrottleConfig::new();
        if let Some(k) = spec.k {
            config = config.with_k(k);
        }
        if let Some(window) = dur(spec.window) {
            config = config.with_window(window);
        }
        if let Some(buckets) = spec.buckets {
            config = config.with_buckets(buckets);
        }
        if let Some(seed) = spec.seed {
            config = config.with_seed(seed);
        }
        Ok(config)
    }
}

#[cfg(feature = "rate-limit")]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateSpec {
    calls: u32,
    period: Dur,
    burst: Option<u32>,
    max_wait: Option<Dur>,
}

#[cfg(feature = "rate-limit")]
impl<'de> Deserialize<'de> for crate::limit::RateConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spec = RateSpec::deserialize(deserializer)?;
        let mut config = crate::limit::RateConfig::new(spec.calls, spec.period.0);
        if let Some(burst) = spec.burst {
            config = config.with_burst(burst);
        }
        if let Some(max_wait) = dur(spec.max_wait) {
            config = config.with_max_wait(max_wait);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::CircuitBreaker;
    use crate::retry::RetryBudget;
    use crate::{ConfigError, Retry};

    const MS: Duration = Duration::from_millis(1);

    fn from<T: for<'de> Deserialize<'de>>(json: &str) -> Result<T, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    fn err<T: for<'de> Deserialize<'de> + fmt::Debug>(json: &str) -> String {
        from::<T>(json).unwrap_err()
    }

    #[test]
    fn durations_read_as_written() {
        for (text, expected) in [
            ("250ms", 250 * MS),
            ("0s", Duration::ZERO),
            ("2s", Duration::from_secs(2)),
            ("1.5s", 1500 * MS),
            ("0.25ms", Duration::from_micros(250)),
            ("1m", Duration::from_secs(60)),
            ("1.5h", Duration::from_secs(5400)),
            ("10us", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
        ] {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_durations_name_the_value() {
        for text in [
            "",
            "250",
            "-1s",
            "+1s",
            "1.5",
            "s",
            "1..5s",
            "1.s",
            ".5s",
            "1 s",
            "1sec",
            "1e3ms",
            "0.5ns",
            "99999999999999999999999h",
            // The fraction pushes a whole part just under the limit over it.
            "340282366920938463463374607431.9s",
            "1s ",
        ] {
            let message = parse_duration(text).unwrap_err();
            assert!(message.contains(&format!("{text:?}")), "{text}: {message}");
        }
        assert!(err::<Dur>("250").contains("duration string"));
    }

    #[test]
    fn jitter_by_name_or_factor() {
        assert_eq!(from::<Jitter>(r#""none""#), Ok(Jitter::None));
        assert_eq!(from::<Jitter>(r#""full""#), Ok(Jitter::Full));
        assert_eq!(from::<Jitter>(r#""equal""#), Ok(Jitter::Equal));
        assert_eq!(
            from::<Jitter>(r#""decorrelated""#),
            Ok(Jitter::Decorrelated)
        );
        assert_eq!(
            from::<Jitter>(r#"{"proportional": 0.2}"#),
            Ok(Jitter::Proportional(0.2))
        );
        assert!(err::<Jitter>(r#""loud""#).contains("unknown jitter \"loud\""));
        assert!(err::<Jitter>(r#""proportional""#).contains("needs a factor"));
        assert_eq!(
            from::<Jitter>(r#"{"absolute": "30ms"}"#),
            Ok(Jitter::Absolute(30 * MS))
        );
        assert!(err::<Jitter>(r#""absolute""#).contains("needs a duration"));
        assert!(
            err::<Jitter>(r#"{"absolute": "30ms", "proportional": 0.2}"#)
                .contains("exactly one of")
        );
        assert!(err::<Jitter>(r#"{}"#).contains("exactly one of"));
        assert!(err::<Jitter>(r#"{"proportional": 0.2, "x": 1}"#).contains("unknown field `x`"));
    }

    #[test]
    fn backoff_calls_the_constructors() {
        let b: Backoff = from(
            r#"{"kind": "exponential", "initial": "100ms", "multiplier": 3.0,
                "max_delay": "2s", "jitter": "equal", "seed": 7}"#,
        )
        .unwrap();
        assert_eq!(
            b,
            Backoff::exponential(100 * MS)
                .with_multiplier(3.0)
                .with_max_delay(Duration::from_secs(2))
                .with_jitter(Jitter::Equal)
                .with_seed(7)
        );
        let b: Backoff =
            from(r#"{"kind": "linear", "initial": "10ms", "increment": "5ms"}"#).unwrap();
        assert_eq!(b, Backoff::linear(10 * MS).with_increment(5 * MS));
        let b: Backoff = from(r#"{"kind": "constant", "initial": "1s"}"#).unwrap();
        assert_eq!(b, Backoff::constant(Duration::from_secs(1)));
    }

    #[test]
    fn backoff_rejects_what_its_kind_ignores() {
        assert!(
            err::<Backoff>(r#"{"kind": "constant", "initial": "1s", "multiplier": 2.0}"#)
                .contains("`multiplier` does not apply to a constant backoff")
        );
        assert!(
            err::<Backoff>(r#"{"kind": "exponential", "initial": "1s", "increment": "1s"}"#)
                .contains("`increment`")
        );
        assert!(err::<Backoff>(r#"{"kind": "cubic", "initial": "1s"}"#).contains("cubic"));
        assert!(err::<Backoff>(r#"{"kind": "constant"}"#).contains("missing field `initial`"));
        assert!(
            err::<Backoff>(r#"{"kind": "constant", "initial": "1s", "jiter": "full"}"#)
                .contains("unknown field `jiter`")
        );
        // Ranges stay with the library: this parses, and validation names the field.
        let b: Backoff =
            from(r#"{"kind": "exponential", "initial": "1s", "multiplier": 0.5}"#).unwrap();
        assert_eq!(b.validate().unwrap_err().field(), "multiplier");
    }

    #[test]
    fn retry_config_defaults_what_is_left_out() {
        assert_eq!(from::<RetryConfig>("{}"), Ok(RetryConfig::new()));
        let c: RetryConfig = from(
            r#"{"max_attempts": 5, "max_retry_after": "30s",
                "backoff": {"kind": "constant", "initial": "50ms", "jitter": "none"}}"#,
        )
        .unwrap();
        assert_eq!(
            c,
            RetryConfig::new()
                .with_max_attempts(5)
                .with_max_retry_after(Duration::from_secs(30))
                .with_backoff(Backoff::constant(50 * MS).with_jitter(Jitter::None))
        );
        let limited: RetryConfig =
            from(r#"{"max_duration": "10s", "first_attempt_timed": true}"#).unwrap();
        assert_eq!(
            limited,
            RetryConfig::new()
                .with_max_duration(Duration::from_secs(10))
                .with_first_attempt_timed(true)
        );
        let zero: RetryConfig = from(r#"{"max_duration": "0s"}"#).unwrap();
        assert_eq!(Retry::new(zero).unwrap_err().field(), "max_duration");
        let zero: RetryConfig = from(r#"{"max_attempts": 0}"#).unwrap();
        assert_eq!(Retry::new(zero).unwrap_err().field(), "max_attempts");
        assert!(err::<RetryConfig>(r#"{"attempts": 3}"#).contains("unknown field `attempts`"));
        assert!(err::<RetryConfig>(r#"{"max_attempts": -1}"#).contains("-1"));
    }

    #[test]
    fn budgets_of_both_kinds() {
        let b: BudgetConfig =
            from(r#"{"kind": "token_bucket", "max_tokens": 10, "token_ratio": 0.1}"#).unwrap();
        assert_eq!(b, BudgetConfig::token_bucket(10, 0.1));
        let b: BudgetConfig =
            from(r#"{"kind": "ratio", "ratio": 0.2, "min_per_second": 5, "window": "30s"}"#)
                .unwrap();
        assert_eq!(
            b,
            BudgetConfig::ratio(0.2)
                .with_min_per_second(5)
                .with_window(Duration::from_secs(30))
        );
        assert_eq!(
            from::<BudgetConfig>(r#"{"kind": "ratio", "ratio": 0.1}"#),
            Ok(BudgetConfig::ratio(0.1))
        );
        assert!(err::<BudgetConfig>(r#"{"kind": "ratio"}"#).contains("needs `ratio`"));
        assert!(
            err::<BudgetConfig>(
                r#"{"kind": "token_bucket", "max_tokens": 10, "token_ratio": 0.1, "window": "1s"}"#
            )
            .contains("`window` does not apply")
        );
        let bad: BudgetConfig = from(r#"{"kind": "ratio", "ratio": -1.0}"#).unwrap();
        let check = |config| RetryBudget::new(config).map(drop).unwrap_err();
        assert_eq!(check(bad).field(), "ratio");
    }

    fn breaker_field(config: BreakerConfig) -> &'static str {
        let result: Result<CircuitBreaker, ConfigError> = CircuitBreaker::new(config);
        result.map(drop).unwrap_err().field()
    }

    #[test]
    fn automatic_half_open_needs_the_tokio_feature() {
        let parsed: Result<BreakerConfig, _> =
            from(r#"{"rule": "consecutive_failures", "failures": 5, "automatic_half_open": true}"#);
        #[cfg(feature = "tokio")]
        assert_eq!(
            parsed.unwrap(),
            BreakerConfig::consecutive_failures(5).with_automatic_half_open(true)
        );
        #[cfg(not(feature = "tokio"))]
        assert!(parsed.unwrap_err().to_string().contains("`tokio` feature"));
        let off: BreakerConfig = from(
            r#"{"rule": "consecutive_failures", "failures": 5, "automatic_half_open": false}"#,
        )
        .unwrap();
        assert_eq!(off, BreakerConfig::consecutive_failures(5));
    }

    #[test]
    fn breakers_of_every_rule() {
        let b: BreakerConfig = from(
            r#"{"rule": "consecutive_failures", "failures": 5, "open_duration": "10s",
                "half_open_probes": 2, "successes_to_close": 3, "probe_lease": "5s"}"#,
        )
        .unwrap();
        assert_eq!(
            b,
            BreakerConfig::consecutive_failures(5)
                .with_open_duration(Duration::from_secs(10))
                .with_half_open_probes(2)
                .with_successes_to_close(3)
                .with_probe_lease(Duration::from_secs(5))
        );
        let b: BreakerConfig = from(
            r#"{"rule": "failure_rate_count", "failure_rate": 0.5, "window_size": 20, "minimum_calls": 10,
                "slow_call_rate": 0.8, "slow_call_duration": "1s"}"#,
        )
        .unwrap();
        assert_eq!(
            b,
            BreakerConfig::failure_rate_count(0.5, 20)
                .with_minimum_calls(10)
                .with_slow_calls(Duration::from_secs(1), 0.8)
        );
        let b: BreakerConfig = from(
            r#"{"rule": "failure_rate_time", "failure_rate": 0.5, "window": "10s", "buckets": 5,
                "open_backoff": {"kind": "exponential", "initial": "1s"}}"#,
        )
        .unwrap();
        assert_eq!(
            b,
            BreakerConfig::failure_rate_time(0.5, Duration::from_secs(10))
                .with_buckets(5)
                .with_open_backoff(Backoff::exponential(Duration::from_secs(1)))
        );
        let b: BreakerConfig = from(
            r#"{"rule": "slow_call_rate", "slow_call_rate": 0.5, "slow_call_duration": "2s",
                "window_size": 50, "failure_rate": 0.3}"#,
        )
        .unwrap();
        assert_eq!(
            b,
            BreakerConfig::slow_call_rate(0.5, Duration::from_secs(2), 50).with_failure_rate(0.3)
        );
        let b: BreakerConfig = from(
            r#"{"rule": "failure_count_time", "failures": 5, "window": "1m", "buckets": 6,
                "minimum_calls": 10, "failure_rate": 0.9}"#,
        )
        .unwrap();
        assert_eq!(
            b,
            BreakerConfig::failure_count_time(5, Duration::from_secs(60))
                .with_failure_rate(0.9)
                .with_buckets(6)
                .with_minimum_calls(10)
        );
    }

    #[test]
    fn breakers_take_the_settings_of_issue_15() {
        let b: BreakerConfig = from(
            r#"{"rule": "failure_rate_count", "failure_rate": 0.5, "window_size": 20,
                "failure_count": 3, "count_reset_interval": "60s", "half_open_probes": 5,
                "successes_to_close": 3, "successes_out_of": 5, "half_open_max_wait": "10s",
                "disabled": true}"#,
        )
        .unwrap();
        assert_eq!(
            b,
            BreakerConfig::failure_rate_count(0.5, 20)
                .with_failure_count(3)
                .with_count_reset_interval(Duration::from_secs(60))
                .with_half_open_probes(5)
                .with_successes_to_close_out_of(3, 5)
                .with_half_open_max_wait(Duration::from_secs(10))
                .with_disabled(true)
        );
        let b: BreakerConfig =
            from(r#"{"rule": "consecutive_failures", "failures": 5, "successes_out_of": 3}"#)
                .unwrap();
        assert_eq!(
            b,
            BreakerConfig::consecutive_failures(5).with_successes_to_close_out_of(1, 3)
        );
        for (json, field) in [
            (
                r#"{"rule": "failure_count_time", "failures": 0, "window": "1s"}"#,
                "failure_count",
            ),
            (
                r#"{"rule": "consecutive_failures", "failures": 1, "count_reset_interval": "0s"}"#,
                "count_reset_interval",
            ),
            (
                r#"{"rule": "consecutive_failures", "failures": 1, "half_open_max_wait": "0s"}"#,
                "half_open_max_wait",
            ),
            (
                r#"{"rule": "consecutive_failures", "failures": 1, "successes_to_close": 3, "successes_out_of": 2}"#,
                "successes_out_of",
            ),
        ] {
            let config: BreakerConfig = from(json).unwrap();
            assert_eq!(breaker_field(config), field, "{json}");
        }
    }

    #[test]
    fn breakers_reject_what_their_rule_ignores() {
        for (json, needle) in [
            (r#"{"rule": "consecutive_failures"}"#, "needs `failures`"),
            (
                r#"{"rule": "consecutive_failures", "failures": 3, "window": "1s"}"#,
                "`window` does not apply",
            ),
            (
                r#"{"rule": "failure_rate_count", "failure_rate": 0.5}"#,
                "needs `window_size`",
            ),
            (
                r#"{"rule": "failure_rate_time", "failure_rate": 0.5, "window": "1s", "window_size": 3}"#,
                "`window_size`",
            ),
            (
                r#"{"rule": "slow_call_rate", "window_size": 3}"#,
                "slow_call_rate",
            ),
            (
                r#"{"rule": "failure_rate_count", "failure_rate": 0.5, "window_size": 3, "slow_call_rate": 0.5}"#,
                "needs `slow_call_duration`",
            ),
            (
                r#"{"rule": "consecutive_failures", "failures": 3, "open_duration": "1s", "open_backoff": {"kind": "constant", "initial": "1s"}}"#,
                "exclude each other",
            ),
            (r#"{"rule": "sometimes"}"#, "sometimes"),
            (
                r#"{"rule": "consecutive_failures", "failures": 3, "failure_count": 2}"#,
                "`failure_count` does not apply",
            ),
            (
                r#"{"rule": "failure_count_time", "window": "1s"}"#,
                "needs `failures`",
            ),
            (
                r#"{"rule": "failure_count_time", "failures": 2, "window": "1s", "failure_count": 3}"#,
                "`failure_count` does not apply",
            ),
            (
                r#"{"rule": "failure_rate_time", "failure_rate": 0.5, "window": "1s", "failures": 3}"#,
                "`failures` does not apply",
            ),
            (
                r#"{"rule": "consecutive_failures", "failures": 3, "open_duration": "soon"}"#,
                "\"soon\"",
            ),
        ] {
            let message = err::<BreakerConfig>(json);
            assert!(message.contains(needle), "{json}: {message}");
        }
        let zero: BreakerConfig =
            from(r#"{"rule": "consecutive_failures", "failures": 0}"#).unwrap();
        assert_eq!(breaker_field(zero), "consecutive_failures");
        let rate: BreakerConfig =
            from(r#"{"rule": "failure_rate_count", "failure_rate": 1.5, "window_size": 10}"#)
                .unwrap();
        assert_eq!(breaker_field(rate), "failure_rate");
    }

    #[test]
    fn attempt_timeouts_fixed_or_fraction() {
        assert_eq!(
            from::<AttemptTimeout>(r#"{"fixed": "500ms"}"#),
            Ok(AttemptTimeout::fixed(500 * MS))
        );
        assert_eq!(
            from::<AttemptTimeout>(r#"{"fraction": 0.25, "min": "50ms", "max": "500ms"}"#),
            Ok(AttemptTimeout::fraction(0.25)
                .with_min(50 * MS)
                .with_max(500 * MS))
        );
        for json in [r#"{}"#, r#"{"fixed": "1s", "fraction": 0.5}"#] {
            assert!(
                err::<AttemptTimeout>(json).contains("exactly one of"),
                "{json}"
            );
        }
        let bad: AttemptTimeout = from(r#"{"fraction": 2.0}"#).unwrap();
        assert_eq!(bad.validate().unwrap_err().field(), "fraction");
    }

    #[test]
    fn limit_configs_read_as_their_setters_build_them() {
        let fixed: LimitConfig =
            from(r#"{ "kind": "fixed", "limit": 8, "max_queue": 4, "max_wait": "20ms" }"#).unwrap();
        assert_eq!(
            fixed,
            LimitConfig::fixed(8)
                .with_max_queue(4)
                .with_max_wait(20 * MS)
        );
        let aimd: LimitConfig = from(
            r#"{ "kind": "aimd", "initial_limit": 10, "min_limit": 2, "max_limit": 50, "backoff_ratio": 0.8, "timeout": "2s" }"#,
        )
        .unwrap();
        assert_eq!(
            aimd,
            LimitConfig::aimd(
                Aimd::new()
                    .with_initial_limit(10)
                    .with_min_limit(2)
                    .with_max_limit(50)
                    .with_backoff_ratio(0.8)
                    .with_timeout(2000 * MS)
            )
        );
        let vegas: LimitConfig =
            from(r#"{ "kind": "vegas", "max_concurrency": 50, "seed": 3 }"#).unwrap();
        assert_eq!(
            vegas,
            LimitConfig::vegas(Vegas::new().with_max_concurrency(50).with_seed(3))
        );
        let gradient: LimitConfig =
            from(r#"{ "kind": "gradient2", "queue_size": 2, "rtt_tolerance": 2.0 }"#).unwrap();
        assert_eq!(
            gradient,
            LimitConfig::gradient2(Gradient2::new().with_queue_size(2).with_rtt_tolerance(2.0))
        );
        let err =
            from::<LimitConfig>(r#"{ "kind": "fixed", "limit": 1, "alpha": 3 }"#).unwrap_err();
        assert!(
            err.contains("`alpha` does not apply to a fixed limit"),
            "{err}"
        );
        let err = from::<LimitConfig>(r#"{ "kind": "fixed" }"#).unwrap_err();
        assert!(err.contains("needs `limit`"), "{err}");
        // Ranges are checked where they always are: when the limit is built.
        let zero: LimitConfig = from(r#"{ "kind": "fixed", "limit": 0 }"#).unwrap();
        assert_eq!(zero.validate().unwrap_err().field(), "limit");
    }

    #[test]
    fn throttle_and_rate_configs_read_as_their_setters_build_them() {
        let throttle: ThrottleConfig = from(r#"{ "k": 1.5, "window": "1m", "seed": 9 }"#).unwrap();
        assert_eq!(
            throttle,
            ThrottleConfig::new()
                .with_k(1.5)
                .with_window(Duration::from_secs(60))
                .with_seed(9)
        );
        assert_eq!(from::<ThrottleConfig>("{}").unwrap(), ThrottleConfig::new());
        #[cfg(feature = "rate-limit")]
        {
            use crate::limit::RateConfig;
            let rate: RateConfig =
                from(r#"{ "calls": 100, "period": "1s", "burst": 5, "max_wait": "10ms" }"#)
                    .unwrap();
            assert_eq!(
                rate,
                RateConfig::per_second(100)
                    .with_burst(5)
                    .with_max_wait(10 * MS)
            );
        }
    }
}
