//! The fault schedule: phases of the run, and how each dependency behaves in each phase.

use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use serde_json::{Map, Value};

use super::dependency;

/// The most phases a schedule may have.
pub const MAX_PHASES: usize = 20;
/// The longest a schedule (or `--duration`) may run.
pub const MAX_TOTAL: Duration = Duration::from_secs(600);
/// The longest latency a schedule may ask of a dependency, in milliseconds.
pub const MAX_LATENCY_MS: u64 = 30_000;

/// How one dependency behaves during a phase.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// Answers 200 after a latency drawn uniformly from `latency_ms`.
    Healthy {
        /// Latency range, in milliseconds.
        latency_ms: (u64, u64),
    },
    /// Answers 200, slowly: after a latency drawn uniformly from `latency_ms`.
    Slow {
        /// Latency range, in milliseconds.
        latency_ms: (u64, u64),
    },
    /// Hard down: every call fails at once, a share of them by closing the connection without
    /// an answer and the rest with a 503.
    Down {
        /// Share of calls whose connection is dropped, in `[0, 1]`.
        drop_share: f64,
    },
    /// Flaky: a share of calls answer 503 with a Retry-After hint; a retry of the same request
    /// that comes back before the hint has passed is refused with 503 again, as a rate limiter
    /// would. The rest answer 200 after a latency drawn from `latency_ms`.
    Flaky {
        /// Share of calls that fail, in `[0, 1]`.
        error_rate: f64,
        /// The Retry-After hint's range, in milliseconds.
        retry_after_ms: (u64, u64),
        /// Latency range of the successful calls, in milliseconds.
        latency_ms: (u64, u64),
    },
}

impl Fault {
    /// A healthy dependency: 2 to 10 ms.
    pub const HEALTHY: Self = Self::Healthy {
        latency_ms: (2, 10),
    };

    /// A short name: `healthy`, `slow`, `down` or `flaky`.
    pub const fn mode(&self) -> &'static str {
        match self {
            Self::Healthy { .. } => "healthy",
            Self::Slow { .. } => "slow",
            Self::Down { .. } => "down",
            Self::Flaky { .. } => "flaky",
        }
    }

    /// What `staunch::chaos` injects into the dependency's healthy, instant handler to make it
    /// behave so, such as `delay 100% (600-2000 ms)`.
    pub fn injected(&self) -> String {
        dependency::describe_chaos(self)
    }

    /// A short description, such as `slow 600-2000 ms`.
    pub fn describe(&self) -> String {
        match *self {
            Self::Healthy { latency_ms: (a, b) } => format!("healthy {a}-{b} ms"),
            Self::Slow { latency_ms: (a, b) } => format!("slow {a}-{b} ms"),
            Self::Down { drop_share } => format!(
                "down: 503 or dropped connection ({:.0}% dropped)",
                drop_share * 100.0
            ),
            Self::Flaky {
                error_rate,
                retry_after_ms: (a, b),
                ..
            } => format!(
                "flaky: {:.0}% 503 with Retry-After {a}-{b} ms",
                error_rate * 100.0
            ),
        }
    }
}

/// One phase of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// Its name, as the report shows it.
    pub name: String,
    /// How long it lasts.
    pub duration: Duration,
    /// How the pricing dependency behaves.
    pub pricing: Fault,
    /// How the inventory dependency behaves.
    pub inventory: Fault,
}

/// The phases of a run, in order.
///
/// # Examples
///
/// ```
/// use staunch_lab::demo::Schedule;
///
/// let schedule = Schedule::from_json(
///     r#"{"phases": [
///         {"name": "healthy", "seconds": 2},
///         {"name": "pricing slow", "seconds": 3, "pricing": {"mode": "slow", "latency_ms": [600, 2000]}}
///     ]}"#,
/// )?;
/// assert_eq!(schedule.phases().len(), 2);
/// assert_eq!(schedule.phases()[1].pricing.mode(), "slow");
/// # Ok::<(), staunch_lab::demo::ScheduleError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    phases: Vec<Phase>,
}

/// A schedule file that cannot be used: which field, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleError {
    field: String,
    message: String,
}

impl ScheduleError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The offending field, as a path such as `phases[2].pricing.latency_ms` (empty when the
    /// file as a whole is wrong).
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "`{}`: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ScheduleError {}

/// An example schedule file, shown by `--help` and in errors.
pub const EXAMPLE: &str = r#"{"phases": [
  {"name": "healthy", "seconds": 5},
  {"name": "pricing slow", "seconds": 8, "pricing": {"mode": "slow", "latency_ms": [600, 2000]}},
  {"name": "pricing down", "seconds": 8, "pricing": {"mode": "down", "drop_share": 0.5}},
  {"name": "inventory flaky", "seconds": 8,
   "inventory": {"mode": "flaky", "error_rate": 0.3, "retry_after_ms": [150, 400]}},
  {"name": "recovery", "seconds": 6}
]}"#;

impl Schedule {
    /// The default schedule, 35 s: healthy; pricing slow at 600–2000 ms; pricing hard down
    /// (503s and dropped connections); inventory flaky (30% 503 with Retry-After); recovery.
    pub fn standard() -> Self {
        let phase = |name: &str, secs: u64, pricing, inventory| Phase {
            name: name.to_owned(),
            duration: Duration::from_secs(secs),
            pricing,
            inventory,
        };
        Self {
            phases: vec![
                phase("healthy", 5, Fault::HEALTHY, Fault::HEALTHY),
                phase(
                    "pricing slow",
                    8,
                    Fault::Slow {
                        latency_ms: (600, 2000),
                    },
                    Fault::HEALTHY,
                ),
                phase(
                    "pricing down",
                    8,
                    Fault::Down { drop_share: 0.5 },
                    Fault::HEALTHY,
                ),
                phase(
                    "inventory flaky",
                    8,
                    Fault::HEALTHY,
                    Fault::Flaky {
                        error_rate: 0.3,
                        retry_after_ms: (150, 400),
                        latency_ms: (2, 10),
                    },
                ),
                phase("recovery", 6, Fault::HEALTHY, Fault::HEALTHY),
            ],
        }
    }

    /// A schedule of `phases`.
    ///
    /// # Errors
    ///
    /// No phase, more than [`MAX_PHASES`], a phase of zero length, or a total longer than
    /// [`MAX_TOTAL`].
    pub fn new(phases: Vec<Phase>) -> Result<Self, ScheduleError> {
        if phases.is_empty() {
            return Err(ScheduleError::new("phases", "needs at least one phase"));
        }
        if phases.len() > MAX_PHASES {
            return Err(ScheduleError::new(
                "phases",
                format!("at most {MAX_PHASES} phases, found {}", phases.len()),
            ));
        }
        for (i, phase) in phases.iter().enumerate() {
            if phase.duration.is_zero() {
                return Err(ScheduleError::new(
                    format!("phases[{i}].seconds"),
                    "must be more than 0",
                ));
            }
            // Each fault is injected by a chaos policy: it must make a valid one.
            for (name, fault) in [("pricing", &phase.pricing), ("inventory", &phase.inventory)] {
                dependency::validate(fault).map_err(|e| {
                    ScheduleError::new(format!("phases[{i}].{name}"), e.to_string())
                })?;
            }
        }
        let schedule = Self { phases };
        if schedule.total() > MAX_TOTAL {
            return Err(ScheduleError::new(
                "phases",
                format!(
                    "the phases add up to {:.1} s; at most {} s",
                    schedule.total().as_secs_f64(),
                    MAX_TOTAL.as_secs()
                ),
            ));
        }
        Ok(schedule)
    }

    /// Reads a schedule from JSON text (see [`EXAMPLE`]): an object with a `phases` array; each
    /// phase has a `name`, its length in `seconds`, and optionally `pricing` and `inventory`,
    /// each either a mode name (`"healthy"`, `"slow"`, `"down"`, `"flaky"`) or an object with a
    /// `mode` and its settings (`latency_ms: [min, max]`, `drop_share`, `error_rate`,
    /// `retry_after_ms: [min, max]`). A dependency left out is healthy.
    ///
    /// # Errors
    ///
    /// Invalid JSON, an unknown or missing field, or a value out of range; the error names the
    /// field.
    pub fn from_json(text: &str) -> Result<Self, ScheduleError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ScheduleError::new("", format!("not valid JSON: {e}")))?;
        let root = object(&value, "")?;
        known_keys(root, "", &["phases"])?;
        let phases = root
            .get("phases")
            .ok_or_else(|| ScheduleError::new("phases", "missing"))?
            .as_array()
            .ok_or_else(|| ScheduleError::new("phases", "must be an array of phases"))?;
        let phases = phases
            .iter()
            .enumerate()
            .map(|(i, p)| parse_phase(p, &format!("phases[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(phases)
    }

    /// The phases, in order.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// The length of the whole schedule.
    pub fn total(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// The same phases stretched or shrunk in proportion so that they last `total`.
    ///
    /// # Errors
    ///
    /// `total` is zero, longer than [`MAX_TOTAL`], or would leave a phase shorter than 1 ms.
    pub fn scaled_to(&self, total: Duration) -> Result<Self, ScheduleError> {
        if total.is_zero() || total > MAX_TOTAL {
            return Err(ScheduleError::new(
                "duration",
                format!("must be more than 0 and at most {} s", MAX_TOTAL.as_secs()),
            ));
        }
        // Scale the phase boundaries rather than each length, so that the rounding to whole
        // milliseconds does not add up: the total is exactly `total`.
        let factor = total.as_secs_f64() / self.total().as_secs_f64();
        let mut phases = self.phases.clone();
        let (mut before, mut boundary_ms) = (Duration::ZERO, 0);
        for phase in &mut phases {
            before += phase.duration;
            let end_ms = (before.as_secs_f64() * factor * 1000.0).round() as u64;
            phase.duration = Duration::from_millis(end_ms - boundary_ms);
            boundary_ms = end_ms;
            if phase.duration.is_zero() {
                return Err(ScheduleError::new(
                    "duration",
                    format!(
                        "too short: phase `{}` would last less than 1 ms",
                        phase.name
                    ),
                ));
            }
        }
        Self::new(phases)
    }

    /// The index of the phase at `elapsed` since the start; past the end, the last phase.
    pub fn phase_at(&self, elapsed: Duration) -> usize {
        let mut end = Duration::ZERO;
        for (i, phase) in self.phases.iter().enumerate() {
            end += phase.duration;
            if elapsed < end {
                return i;
            }
        }
        self.phases.len() - 1
    }

    /// When phase `index` starts, since the start of the run.
    pub fn phase_start(&self, index: usize) -> Duration {
        self.phases[..index].iter().map(|p| p.duration).sum()
    }
}

fn object<'a>(value: &'a Value, field: &str) -> Result<&'a Map<String, Value>, ScheduleError> {
    value
        .as_object()
        .ok_or_else(|| ScheduleError::new(field, "must be an object"))
}

fn known_keys(map: &Map<String, Value>, field: &str, known: &[&str]) -> Result<(), ScheduleError> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(ScheduleError::new(
            join(field, unknown),
            format!("unknown field; expected one of: {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

fn join(field: &str, key: &str) -> String {
    if field.is_empty() {
        key.to_owned()
    } else {
        format!("{field}.{key}")
    }
}

fn parse_phase(value: &Value, field: &str) -> Result<Phase, ScheduleError> {
    let map = object(value, field)?;
    known_keys(map, field, &["name", "seconds", "pricing", "inventory"])?;
    let name_field = join(field, "name");
    let name = match map.get("name") {
        None => return Err(ScheduleError::new(name_field, "missing")),
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 40 => {
            s.trim().to_owned()
        }
        Some(_) => {
            return Err(ScheduleError::new(
                name_field,
                "must be a non-empty string of at most 40 characters",
            ));
        }
    };
    let seconds_field = join(field, "seconds");
    let seconds = map
        .get("seconds")
        .ok_or_else(|| ScheduleError::new(&seconds_field, "missing"))?
        .as_f64()
        .filter(|s| s.is_finite() && *s >= 0.001 && *s <= MAX_TOTAL.as_secs_f64())
        .ok_or_else(|| {
            ScheduleError::new(
                &seconds_field,
                format!(
                    "must be a number of seconds from 0.001 to {}",
                    MAX_TOTAL.as_secs()
                ),
            )
        })?;
    let fault = |key: &str| match map.get(key) {
        None => Ok(Fault::HEALTHY),
        Some(v) => parse_fault(v, &join(field, key)),
    };
    Ok(Phase {
        name,
        duration: Duration::from_secs_f64(seconds),
        pricing: fault("pricing")?,
        inventory: fault("inventory")?,
    })
}

fn parse_fault(value: &Value, field: &str) -> Result<Fault, ScheduleError> {
    const MODES: &str = "\"healthy\", \"slow\", \"down\" or \"flaky\"";
    let empty = Map::new();
    let (mode, map, mode_field) = match value {
        Value::String(mode) => (mode.as_str(), &empty, field.to_owned()),
        Value::Object(map) => {
            let mode_field = join(field, "mode");
            let mode = map
                .get("mode")
                .ok_or_else(|| ScheduleError::new(&mode_field, format!("missing; one of {MODES}")))?
                .as_str()
                .ok_or_else(|| {
                    ScheduleError::new(&mode_field, format!("must be one of {MODES}"))
                })?;
            (mode, map, mode_field)
        }
        _ => {
            return Err(ScheduleError::new(
                field,
                format!("must be a mode name ({MODES}) or an object with a `mode`"),
            ));
        }
    };
    let range = |key: &str, default: (u64, u64), bounds: RangeInclusive<u64>| match map.get(key) {
        None => Ok(default),
        Some(v) => parse_range(v, &join(field, key), bounds),
    };
    let share = |key: &str, default: f64| match map.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_f64()
            .filter(|x| (0.0..=1.0).contains(x))
            .ok_or_else(|| ScheduleError::new(join(field, key), "must be a number from 0 to 1")),
    };
    let fault = match mode {
        "healthy" => {
            known_keys(map, field, &["mode", "latency_ms"])?;
            Fault::Healthy {
                latency_ms: range("latency_ms", (2, 10), 0..=MAX_LATENCY_MS)?,
            }
        }
        "slow" => {
            known_keys(map, field, &["mode", "latency_ms"])?;
            Fault::Slow {
                latency_ms: range("latency_ms", (600, 2000), 0..=MAX_LATENCY_MS)?,
            }
        }
        "down" => {
            known_keys(map, field, &["mode", "drop_share"])?;
            Fault::Down {
                drop_share: share("drop_share", 0.5)?,
            }
        }
        "flaky" => {
            known_keys(
                map,
                field,
                &["mode", "error_rate", "retry_after_ms", "latency_ms"],
            )?;
            Fault::Flaky {
                error_rate: share("error_rate", 0.3)?,
                retry_after_ms: range("retry_after_ms", (150, 400), 1..=60_000)?,
                latency_ms: range("latency_ms", (2, 10), 0..=MAX_LATENCY_MS)?,
            }
        }
        other => {
            return Err(ScheduleError::new(
                mode_field,
                format!("unknown mode `{other}`; one of {MODES}"),
            ));
        }
    };
    Ok(fault)
}

fn parse_range(
    value: &Value,
    field: &str,
    bounds: RangeInclusive<u64>,
) -> Result<(u64, u64), ScheduleError> {
    let problem = || {
        ScheduleError::new(
            field,
            format!(
                "must be [min, max] in whole milliseconds, {} <= min <= max <= {}",
                bounds.start(),
                bounds.end()
            ),
        )
    };
    let pair = value
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or_else(problem)?;
    let (min, max) = (
        pair[0].as_u64().ok_or_else(problem)?,
        pair[1].as_u64().ok_or_else(problem)?,
    );
    if min > max || !bounds.contains(&min) || !bounds.contains(&max) {
        return Err(problem());
    }
    Ok((min, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_is_the_standard_schedule() {
        assert_eq!(Schedule::from_json(EXAMPLE).unwrap(), Schedule::standard());
        assert_eq!(Schedule::standard().total(), Duration::from_secs(35));
    }

    #[test]
    fn errors_name_the_field() {
        let table = [
            ("[]", "", "must be an object"),
            ("{", "", "not valid JSON"),
            ("{}", "phases", "missing"),
            (r#"{"phases": []}"#, "phases", "at least one"),
            (
                r#"{"phases": [{"seconds": 1}]}"#,
                "phases[0].name",
                "missing",
            ),
            (
                r#"{"phases": [{"name": "a"}]}"#,
                "phases[0].seconds",
                "missing",
            ),
            (
                r#"{"phases": [{"name": "a", "seconds": 0}]}"#,
                "phases[0].seconds",
                "0.001",
            ),
            (
                r#"{"phases": [{"name": "a", "seconds": 1, "colour": 1}]}"#,
                "phases[0].colour",
                "unknown field",
            ),
            (
                r#"{"phases": [{"name": "a", "seconds": 1, "pricing": "melting"}]}"#,
                "phases[0].pricing",
                "unknown mode",
            ),
            (
                r#"{"phases": [{"name": "a", "seconds": 1, "pricing": {"mode": "slow", "latency_ms": [9, 3]}}]}"#,
                "phases[0].pricing.latency_ms",
                "min <= max",
            ),
            (
                r#"{"phases": [{"name": "a", "seconds": 1, "inventory": {"mode": "flaky", "error_rate": 1.5}}]}"#,
                "phases[0].inventory.error_rate",
                "from 0 to 1",
            ),
            (
                r#"{"phases": [{"name": "a", "seconds": 1, "inventory": {"mode": "down", "latency_ms": [1, 2]}}]}"#,
                "phases[0].inventory.latency_ms",
                "unknown field",
            ),
            (
                r#"{"phases": [{"name": "a", "seconds": 400}, {"name": "b", "seconds": 400}]}"#,
                "phases",
                "at most 600",
            ),
        ];
        for (text, field, message) in table {
            let err = Schedule::from_json(text).unwrap_err();
            assert_eq!(err.field(), field, "{text}: {err}");
            assert!(err.message().contains(message), "{text}: {err}");
        }
    }

    #[test]
    fn shorthand_and_defaults() {
        let s = Schedule::from_json(
            r#"{"phases": [{"name": "x", "seconds": 1.5, "pricing": "down", "inventory": "flaky"}]}"#,
        )
        .unwrap();
        let phase = &s.phases()[0];
        assert_eq!(phase.duration, Duration::from_millis(1500));
        assert_eq!(phase.pricing, Fault::Down { drop_share: 0.5 });
        assert_eq!(phase.inventory.mode(), "flaky");
    }

    #[test]
    fn scaling_keeps_proportions_and_phase_lookup() {
        let s = Schedule::standard()
            .scaled_to(Duration::from_secs(7))
            .unwrap();
        assert_eq!(s.total(), Duration::from_secs(7));
        assert_eq!(s.phases()[1].duration, Duration::from_millis(1600));
        assert_eq!(s.phase_at(Duration::ZERO), 0);
        assert_eq!(s.phase_at(Duration::from_millis(999)), 0);
        assert_eq!(s.phase_at(Duration::from_millis(1000)), 1);
        assert_eq!(s.phase_at(Duration::from_secs(60)), 4);
        assert_eq!(s.phase_start(2), Duration::from_millis(2600));
        assert!(Schedule::standard().scaled_to(Duration::ZERO).is_err());
        assert!(
            Schedule::standard()
                .scaled_to(Duration::from_secs(601))
                .is_err()
        );
    }
}
