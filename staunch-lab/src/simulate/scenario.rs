//! The scenario file: `[load]`, `[dependency]` (with `[[dependency.phase]]`s) and `[policy]`,
//! read with `serde` and checked once, so that a run cannot meet a bad value.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use staunch::breaker::{BreakerConfig, CircuitBreaker};
use staunch::deadline::AttemptTimeout;
use staunch::hedge::{Hedge, HedgeConfig};
use staunch::limit::{ConcurrencyLimit, LimitConfig, RateConfig, ThrottleConfig};
use staunch::retry::{BudgetConfig, RetryBudget};
use staunch::{ConfigError, Retry, RetryConfig};

use super::duration::{Dur, format_duration};

/// The most requests one run may make, so that a typo in `rate` cannot hang the program.
pub const MAX_REQUESTS: f64 = 1_000_000.0;

/// What went wrong reading a scenario or policy file: the file and a message that names the
/// field and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    file: String,
    message: String,
}

impl ScenarioError {
    pub(crate) fn new(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.display().to_string(),
            message: message.into(),
        }
    }

    /// What is wrong, without the file name.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// A scenario: the load, the dependency's behaviour over time, and the policy in front of it.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The scenario's name (`name`, or the file's stem).
    pub name: String,
    /// What the scenario shows (`description`).
    pub description: Option<String>,
    /// The seed in the file, used when `--seed` is not given.
    pub seed: Option<u64>,
    /// The offered load.
    pub load: Load,
    /// The simulated dependency: the only one of a `[dependency]` file, the first of a
    /// `[dependencies]` one.
    pub dependency: Dependency,
    /// Every dependency and the order a request calls them in.
    pub calls: Calls,
    /// Client instances (`[fleet] clients`, default 1), each with its own breakers, budgets and
    /// limits, sharing the load in turn and the dependencies.
    pub clients: usize,
    /// The policy of this file.
    pub policy: Policy,
}

/// What one request does: the dependencies it calls, in sequence or in parallel.
#[derive(Debug, Clone, PartialEq)]
pub struct Calls {
    /// The dependencies by name, in the file's order: `("dependency", ..)` alone for a
    /// `[dependency]` file.
    pub dependencies: Vec<(String, Dependency)>,
    /// The steps of a request, in order; the dependencies of one step (indices into
    /// `dependencies`) are called in parallel. A call that fails (no fallback) ends the request.
    pub steps: Vec<Vec<usize>>,
    /// Whether the file named its dependencies (`[dependencies.NAME]`): the report then has a row
    /// per dependency beside the request's.
    pub named: bool,
}

impl Calls {
    /// One unnamed dependency, called once per request: a `[dependency]` file.
    pub fn one(dependency: Dependency) -> Self {
        Self {
            dependencies: vec![("dependency".to_owned(), dependency)],
            steps: vec![vec![0]],
            named: false,
        }
    }

    /// The names of the dependencies, in order.
    pub fn names(&self) -> Vec<String> {
        self.dependencies.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// The most client instances a fleet may have.
pub const MAX_CLIENTS: usize = 1000;

/// The most dependencies a request may call.
pub const MAX_DEPENDENCIES: usize = 16;
/// The most phases one dependency may have (the report has a block per phase).
pub const MAX_PHASES: usize = 100;

/// How requests arrive: open loop, at a fixed mean rate, whatever the answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    /// Requests per second.
    pub rate: f64,
    /// How long requests keep arriving.
    pub duration: Duration,
    /// Evenly spaced, or a Poisson process.
    pub arrivals: Arrivals,
    /// How long after the last arrival the run waits for requests still in flight; those still
    /// running then are reported as unfinished.
    pub drain: Duration,
}

/// The spacing of arrivals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrivals {
    /// Exactly `1 / rate` apart.
    Uniform,
    /// Exponentially distributed gaps with mean `1 / rate` (independent clients).
    Poisson,
}

/// The simulated dependency: a baseline behaviour, overridden during phases.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    /// Behaviour outside every phase.
    pub baseline: Behaviour,
    /// Time windows with another behaviour, sorted and disjoint.
    pub phases: Vec<Phase>,
    /// The dependency's workers: calls beyond this many wait in a FIFO queue, and the work
    /// of a call whose caller gave up still runs (as on a real server).
    pub max_concurrency: Option<u32>,
    /// With `max_concurrency`: calls that find this many already waiting get an immediate 503.
    pub max_queue: Option<u32>,
}

impl Dependency {
    /// The behaviour at `t` (since the start of the run).
    pub fn at(&self, t: Duration) -> &Behaviour {
        self.phases
            .iter()
            .find(|p| p.start <= t && t < p.end)
            .map_or(&self.baseline, |p| &p.behaviour)
    }
}

/// How the dependency answers a call that starts at some time.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// How long an answer takes.
    pub latency: Latency,
    /// The share of answers that are errors (a 503), in `[0, 1]`.
    pub error_rate: f64,
    /// The Retry-After hint an error carries, if any.
    pub retry_after: Option<Duration>,
    /// A hard outage, which overrides latency and errors.
    pub outage: Option<Outage>,
}

/// A hard outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outage {
    /// Connection refused: every call fails after [`REFUSED_AFTER`](super::engine::REFUSED_AFTER).
    Refused,
    /// Packets dropped: a call never answers; only a timeout ends it.
    Blackhole,
}

/// A named window of time with its own behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// Shown in the report.
    pub name: String,
    /// When it starts (since the start of the run).
    pub start: Duration,
    /// When it ends.
    pub end: Duration,
    /// The baseline with this phase's overrides.
    pub behaviour: Behaviour,
}

/// A latency distribution.
#[derive(Debug, Clone, PartialEq)]
pub enum Latency {
    /// Always this long (`"20ms"`, or `distribution = "constant"` or `"fixed"` with `value`).
    Fixed(Duration),
    /// Uniform between `min` and `max`.
    Uniform {
        /// The shortest.
        min: Duration,
        /// The longest.
        max: Duration,
    },
    /// Normal with this mean and standard deviation, cut at zero.
    Normal {
        /// The mean.
        mean: Duration,
        /// The standard deviation.
        sd: Duration,
    },
    /// Log-normal with this mean and standard deviation (of the latency itself): a long right
    /// tail, as real latencies have.
    LogNormal {
        /// The mean.
        mean: Duration,
        /// The standard deviation.
        sd: Duration,
    },
    /// One of several distributions, drawn with these weights (as shares of their sum): a
    /// fast path and a slow one, say.
    Mixture(Vec<(f64, Latency)>),
}

impl Latency {
    /// A draw from the distribution.
    pub fn sample(&self, rng: &mut fastrand::Rng) -> Duration {
        let secs = match *self {
            Self::Fixed(d) => return d,
            Self::Uniform { min, max } => {
                return min + (max - min).mul_f64(rng.f64());
            }
            Self::Mixture(ref parts) => {
                let total: f64 = parts.iter().map(|(weight, _)| weight).sum();
                let mut pick = rng.f64() * total;
                for (weight, part) in parts {
                    if pick < *weight {
                        return part.sample(rng);
                    }
                    pick -= weight;
                }
                // Rounding left the pick at the very top: the last part.
                return parts
                    .last()
                    .map_or(Duration::ZERO, |(_, part)| part.sample(rng));
            }
            Self::Normal { mean, sd } => mean.as_secs_f64() + sd.as_secs_f64() * normal(rng),
            Self::LogNormal { mean, sd } => {
                let (m, s) = (mean.as_secs_f64(), sd.as_secs_f64());
                if m <= 0.0 {
                    return Duration::ZERO;
                }
                let sigma2 = (1.0 + (s * s) / (m * m)).ln();
                let mu = m.ln() - sigma2 / 2.0;
                (mu + sigma2.sqrt() * normal(rng)).exp()
            }
        };
        // Finite by construction (durations of at most a day, see `check_latency`).
        Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::ZERO)
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = 1.0 - rng.f64(); // in (0, 1]: ln is finite
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The policy in front of the dependency, built with staunch's own config types.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Shown in the report (`name`, or the file's stem).
    pub name: String,
    /// Retry, if any.
    pub retry: Option<RetryConfig>,
    /// A retry budget shared by all requests, if any (needs `retry` or `hedge`).
    pub budget: Option<BudgetConfig>,
    /// Hedging in retry's place, if any (a policy retries or hedges).
    pub hedge: Option<HedgeConfig>,
    /// A circuit breaker shared by all requests, if any.
    pub breaker: Option<BreakerConfig>,
    /// A limit on each attempt, if any.
    pub attempt_timeout: Option<AttemptTimeout>,
    /// An overall deadline per request, if any.
    pub timeout: Option<Duration>,
    /// Whether a fallback answers for an open circuit, a timeout and exhausted retries.
    pub fallback: bool,
    /// Whether retry waits for the breaker's next probe rather than stopping at once.
    pub wait_for_probe: bool,
    /// Client-side adaptive throttling shared by all requests, if any.
    pub throttle: Option<ThrottleConfig>,
    /// A rate limit shared by all requests, if any.
    pub rate_limit: Option<RateConfig>,
    /// A concurrency limit (fixed or adaptive) shared by all requests, if any.
    pub limit: Option<LimitConfig>,
    /// The `[policy]` table as written, one `key = value` line per setting, for the report.
    pub settings: Vec<String>,
    /// With `[dependencies]`: the policy of each dependency named in `[policy.NAME]`, in the
    /// order of the file. The fields above then hold only `name` and `timeout`, the request's
    /// deadline over every call; a dependency without a table gets a bare call. Empty, the
    /// fields above are the policy of every dependency, `timeout` still the request's deadline.
    pub dependencies: Vec<(String, Policy)>,
}

impl Policy {
    /// A policy with nothing: one call, no timeout, no fallback.
    pub fn bare(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            retry: None,
            budget: None,
            hedge: None,
            breaker: None,
            attempt_timeout: None,
            timeout: None,
            fallback: false,
            wait_for_probe: false,
            throttle: None,
            rate_limit: None,
            limit: None,
            settings: Vec::new(),
            dependencies: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: Option<String>,
    description: Option<String>,
    seed: Option<u64>,
    load: Option<RawLoad>,
    dependency: Option<RawDependency>,
    dependencies: Option<toml::Table>,
    request: Option<RawRequest>,
    fleet: Option<RawFleet>,
    /// Read apart: with `[dependencies]` it holds a table per dependency.
    policy: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    clients: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    sequence: Option<Vec<Step>>,
    parallel: Option<Vec<String>>,
}

/// A step of `[request] sequence`: a dependency, or a list of them called in parallel.
#[derive(Deserialize)]
#[serde(untagged)]
enum Step {
    One(String),
    Parallel(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoad {
    rate: f64,
    duration: Dur,
    arrivals: Option<Arrivals>,
    drain: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDependency {
    latency: Latency,
    error_rate: Option<f64>,
    retry_after: Option<Dur>,
    outage: Option<Outage>,
    max_concurrency: Option<u32>,
    max_queue: Option<u32>,
    #[serde(default)]
    phase: Vec<RawPhase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhase {
    name: String,
    start: Dur,
    end: Dur,
    latency: Option<Latency>,
    error_rate: Option<f64>,
    retry_after: Option<Dur>,
    outage: Option<Outage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: Option<String>,
    retry: Option<RetryConfig>,
    hedge: Option<HedgeConfig>,
    budget: Option<BudgetConfig>,
    breaker: Option<BreakerConfig>,
    attempt_timeout: Option<AttemptTimeout>,
    timeout: Option<Dur>,
    #[serde(default)]
    fallback: bool,
    #[serde(default)]
    wait_for_probe: bool,
    throttle: Option<ThrottleConfig>,
    rate_limit: Option<RateConfig>,
    limit: Option<LimitConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum DistributionKind {
    Fixed,
    Constant,
    Uniform,
    Normal,
    Lognormal,
    Mixture,
}

/// A latency distribution as written; a part of a mixture is one too, with a `weight`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DistributionSpec {
    distribution: DistributionKind,
    weight: Option<f64>,
    value: Option<Dur>,
    mean: Option<Dur>,
    sd: Option<Dur>,
    min: Option<Dur>,
    max: Option<Dur>,
    parts: Option<Vec<DistributionSpec>>,
}

impl DistributionSpec {
    /// The latency this spec describes; the message names what is missing or misplaced.
    fn latency(self) -> Result<Latency, String> {
        if self.weight.is_some() {
            return Err("`weight` is for the parts of a mixture".to_owned());
        }
        self.unweighted()
    }

    /// [`latency`](Self::latency), whether or not a weight was given (a part's is read
    /// before).
    fn unweighted(self) -> Result<Latency, String> {
        let given = [
            ("value", self.value.is_some()),
            ("mean", self.mean.is_some()),
            ("sd", self.sd.is_some()),
            ("min", self.min.is_some()),
            ("max", self.max.is_some()),
            ("parts", self.parts.is_some()),
        ];
        let (name, takes): (&str, &[&str]) = match self.distribution {
            DistributionKind::Fixed => ("a fixed latency", &["value"]),
            DistributionKind::Constant => ("a constant latency", &["value"]),
            DistributionKind::Uniform => ("a uniform latency", &["min", "max"]),
            DistributionKind::Normal => ("a normal latency", &["mean", "sd"]),
            DistributionKind::Lognormal => ("a lognormal latency", &["mean", "sd"]),
            DistributionKind::Mixture => ("a mixture", &["parts"]),
        };
        for (field, set) in given {
            if set && !takes.contains(&field) {
                return Err(format!(
                    "`{field}` does not apply to {name}, which takes `{}`",
                    takes.join("` and `")
                ));
            }
        }
        let need = |field: &str, value: Option<Dur>| {
            value
                .map(|d| d.0)
                .ok_or_else(|| format!("{name} needs `{field}`"))
        };
        Ok(match self.distribution {
            DistributionKind::Fixed | DistributionKind::Constant => {
                Latency::Fixed(need("value", self.value)?)
            }
            DistributionKind::Uniform => Latency::Uniform {
                min: need("min", self.min)?,
                max: need("max", self.max)?,
            },
            DistributionKind::Normal => Latency::Normal {
                mean: need("mean", self.mean)?,
                sd: need("sd", self.sd)?,
            },
            DistributionKind::Lognormal => Latency::LogNormal {
                mean: need("mean", self.mean)?,
                sd: need("sd", self.sd)?,
            },
            DistributionKind::Mixture => {
                let parts = self.parts.unwrap_or_default();
                if parts.is_empty() {
                    return Err("a mixture needs `parts`, at least one".to_owned());
                }
                let mut mixture = Vec::with_capacity(parts.len());
                for (i, part) in parts.into_iter().enumerate() {
                    let Some(weight) = part.weight else {
                        return Err(format!("parts[{i}] needs a `weight`"));
                    };
                    if !(weight.is_finite() && weight > 0.0) {
                        return Err(format!(
                            "parts[{i}].weight: {weight} is not allowed; use a number above 0 (weights are shares of their sum)"
                        ));
                    }
                    if let DistributionKind::Mixture = part.distribution {
                        return Err(format!(
                            "parts[{i}]: a mixture cannot hold a mixture; list its parts here"
                        ));
                    }
                    let latency = part.unweighted().map_err(|e| format!("parts[{i}]: {e}"))?;
                    mixture.push((weight, latency));
                }
                Latency::Mixture(mixture)
            }
        })
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LatencyVisitor;
        impl<'de> Visitor<'de> for LatencyVisitor {
            type Value = Latency;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a duration such as \"20ms\", or { distribution = \"lognormal\", mean = \"40ms\", sd = \"20ms\" }",
                )
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Latency, E> {
                super::duration::parse_duration(text)
                    .map(Latency::Fixed)
                    .map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Latency, A::Error> {
                let spec =
                    DistributionSpec::deserialize(de::value::MapAccessDeserializer::new(map))?;
                spec.latency().map_err(de::Error::custom)
            }
        }
        deserializer.deserialize_any(LatencyVisitor)
    }
}

/// The longest latency, duration or time a file may give, so that arithmetic stays finite.
const MAX_TIME: Duration = Duration::from_secs(24 * 3600);

fn stem(path: &Path) -> String {
    path.file_stem().map_or_else(
        || "scenario".to_owned(),
        |s| s.to_string_lossy().into_owned(),
    )
}

fn read(path: &Path) -> Result<(RawFile, toml::Table), ScenarioError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ScenarioError::new(path, format!("cannot read the file: {e}")))?;
    let raw: RawFile = toml::from_str(&text)
        .map_err(|e| ScenarioError::new(path, e.to_string().trim_end().to_owned()))?;
    // Parsed a second time, untyped, only to echo the policy as written.
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| ScenarioError::new(path, e.to_string().trim_end().to_owned()))?;
    Ok((raw, table))
}

impl Scenario {
    /// Reads and checks a scenario file.
    ///
    /// # Errors
    ///
    /// The file cannot be read, is not valid TOML, has an unknown or missing field, or a value
    /// out of range; the message names the field.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let (raw, _) = read(path)?;
        let err = |message: String| ScenarioError::new(path, message);
        let load = raw
            .load
            .ok_or_else(|| err("missing table [load]".to_owned()))?;
        let load = check_load(load).map_err(err)?;
        let calls = match (raw.dependency, raw.dependencies) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "[dependencies]: a file has one [dependency] or named [dependencies.NAME], not both"
                        .to_owned(),
                ));
            }
            (Some(dependency), None) => {
                if raw.request.is_some() {
                    return Err(err(
                        "[request]: says which dependencies a request calls; name them in [dependencies.NAME]"
                            .to_owned(),
                    ));
                }
                Calls::one(check_dependency(dependency, "dependency").map_err(err)?)
            }
            (None, Some(dependencies)) => check_calls(dependencies, raw.request).map_err(err)?,
            (None, None) => {
                return Err(err(
                    "missing table [dependency] (or named [dependencies.NAME])".to_owned(),
                ));
            }
        };
        let names = if calls.named {
            calls.names()
        } else {
            Vec::new()
        };
        let policy = policy_table(raw.policy, &names, stem(path)).map_err(err)?;
        let clients = match raw.fleet {
            None => 1,
            Some(fleet) => {
                check_clients(fleet.clients).map_err(|m| err(format!("fleet.clients: {m}")))?
            }
        };
        Ok(Self {
            name: raw.name.unwrap_or_else(|| stem(path)),
            description: raw.description,
            seed: raw.seed,
            load,
            dependency: calls.dependencies[0].1.clone(),
            calls,
            clients,
            policy,
        })
    }
}

impl Policy {
    /// Reads and checks only the `[policy]` of a file (for `--compare`): its `[load]` and
    /// `[dependency]`, if any, must parse but are not used.
    ///
    /// # Errors
    ///
    /// As [`Scenario::from_file`], for the policy.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        Self::from_file_for(path, &[])
    }

    /// Reads and checks only the `[policy]` of a file, for a scenario with these named
    /// dependencies (`[policy.NAME]` tables are theirs); `&[]` for a `[dependency]` scenario.
    ///
    /// # Errors
    ///
    /// As [`Scenario::from_file`], for the policy.
    pub fn from_file_for(path: &Path, dependencies: &[String]) -> Result<Self, ScenarioError> {
        let (raw, _) = read(path)?;
        policy_table(raw.policy, dependencies, stem(path)).map_err(|m| ScenarioError::new(path, m))
    }
}

/// A fleet's size: 1 to [`MAX_CLIENTS`]; the message says what is wrong.
pub fn check_clients(clients: i64) -> Result<usize, String> {
    match usize::try_from(clients) {
        Ok(n @ 1..=MAX_CLIENTS) => Ok(n),
        _ => Err(format!(
            "{clients} is not allowed; use a whole number of client instances from 1 to {MAX_CLIENTS}"
        )),
    }
}

/// The `[dependencies.NAME]` tables and the `[request]` that calls them.
fn check_calls(tables: toml::Table, request: Option<RawRequest>) -> Result<Calls, String> {
    if tables.is_empty() {
        return Err("[dependencies]: name at least one, as [dependencies.NAME]".to_owned());
    }
    if tables.len() > MAX_DEPENDENCIES {
        return Err(format!(
            "[dependencies]: {} dependencies; a request may call at most {MAX_DEPENDENCIES}",
            tables.len()
        ));
    }
    let mut dependencies = Vec::with_capacity(tables.len());
    for (name, value) in tables {
        let field = format!("dependencies.{name}");
        if name.trim().is_empty() || name.contains(['.', '"', '\'']) {
            return Err(format!(
                "{field}: name a dependency with letters, digits, - and _"
            ));
        }
        let raw: RawDependency = value
            .try_into()
            .map_err(|e: toml::de::Error| format!("{field}: {}", e.message().trim_end()))?;
        dependencies.push((name, check_dependency(raw, &field)?));
    }
    let index = |name: &str| {
        dependencies
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| {
                let names: Vec<&str> = dependencies.iter().map(|(n, _)| n.as_str()).collect();
                format!(
                    "request: there is no dependency {name:?}; the dependencies are {}",
                    names.join(", ")
                )
            })
    };
    let steps: Vec<Vec<usize>> = match request {
        None => (0..dependencies.len()).map(|i| vec![i]).collect(),
        Some(RawRequest {
            sequence: Some(_),
            parallel: Some(_),
        }) => {
            return Err(
                "request: give `sequence` or `parallel`, not both (a step of a sequence can be a list called in parallel)"
                    .to_owned(),
            );
        }
        Some(RawRequest {
            sequence: None,
            parallel: None,
        }) => {
            return Err(
                "request: say which dependencies a request calls: sequence = [\"a\", \"b\"] or parallel = [\"a\", \"b\"]"
                    .to_owned(),
            );
        }
        Some(RawRequest {
            sequence: Some(sequence),
            ..
        }) => sequence
            .iter()
            .map(|step| match step {
                Step::One(name) => Ok(vec![index(name)?]),
                Step::Parallel(names) => names.iter().map(|n| index(n)).collect(),
            })
            .collect::<Result<_, String>>()?,
        Some(RawRequest {
            parallel: Some(names),
            ..
        }) => vec![
            names
                .iter()
                .map(|n| index(n))
                .collect::<Result<_, String>>()?,
        ],
    };
    if steps.iter().any(Vec::is_empty) {
        return Err("request: a step calls no dependency; remove the empty list".to_owned());
    }
    let mut seen = vec![false; dependencies.len()];
    for &i in steps.iter().flatten() {
        if std::mem::replace(&mut seen[i], true) {
            return Err(format!(
                "request: {} is called twice; call each dependency once",
                dependencies[i].0
            ));
        }
    }
    if let Some(i) = seen.iter().position(|called| !called) {
        return Err(format!(
            "dependencies.{}: no request calls it; add it to [request], or remove it",
            dependencies[i].0
        ));
    }
    Ok(Calls {
        dependencies,
        steps,
        named: true,
    })
}

/// The settings of a `[policy]`-like table a fan-out policy may hold beside the dependencies'.
const REQUEST_SETTINGS: [&str; 2] = ["name", "timeout"];

/// The `[policy]` table: a policy for the one dependency (or every dependency alike), or, with
/// `[policy.NAME]` tables for some of `dependencies`, a policy per dependency.
fn policy_table(
    mut table: toml::Table,
    dependencies: &[String],
    default_name: String,
) -> Result<Policy, String> {
    let own: Vec<(String, toml::Table)> = dependencies
        .iter()
        .filter_map(|name| match table.remove(name) {
            Some(toml::Value::Table(t)) => Some(Ok((name.clone(), t))),
            Some(_) => Some(Err(format!(
                "policy.{name}: the policy of dependency {name} is a table, [policy.{name}]"
            ))),
            None => None,
        })
        .collect::<Result<_, _>>()?;
    if !own.is_empty()
        && let Some(key) = table
            .keys()
            .find(|k| !REQUEST_SETTINGS.contains(&k.as_str()))
    {
        return Err(format!(
            "policy.{key}: with a policy per dependency, [policy] holds only the request's name and timeout; move {key} into [policy.{}]",
            own[0].0
        ));
    }
    let mut top = one_policy(table, "policy", default_name)?;
    for (name, own_table) in own {
        if own_table.contains_key("name") {
            return Err(format!(
                "policy.{name}.name: a dependency's policy is named after it; name the policy in [policy]"
            ));
        }
        let field = format!("policy.{name}");
        let policy = one_policy(own_table, &field, name.clone())?;
        top.settings.extend(
            policy
                .settings
                .iter()
                .map(|setting| format!("{name}: {setting}")),
        );
        top.dependencies.push((name, policy));
    }
    Ok(top)
}

/// One policy table, read and checked; its errors name `field` (`policy`, `policy.pricing`).
fn one_policy(table: toml::Table, field: &str, default_name: String) -> Result<Policy, String> {
    let raw: RawPolicy = toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| format!("{field}: {}", e.message().trim_end()))?;
    let mut echo = toml::Table::new();
    echo.insert("policy".to_owned(), toml::Value::Table(table));
    // The checks name `policy.X`; a dependency's policy is `policy.NAME.X`.
    policy(raw, &echo, default_name).map_err(|m| match m.strip_prefix("policy.") {
        Some(rest) if field != "policy" => format!("{field}.{rest}"),
        _ => m,
    })
}

fn check_load(raw: RawLoad) -> Result<Load, String> {
    let duration = raw.duration.0;
    if !(raw.rate.is_finite() && raw.rate > 0.0) {
        return Err(format!(
            "load.rate: {} is not allowed; use a number of requests per second above 0",
            raw.rate
        ));
    }
    if duration.is_zero() || duration > MAX_TIME {
        return Err(format!(
            "load.duration: {} is not allowed; use a duration above 0 and at most 24h",
            format_duration(duration)
        ));
    }
    if raw.rate * duration.as_secs_f64() > MAX_REQUESTS {
        return Err(format!(
            "load.rate: {} requests per second for {} make more than {MAX_REQUESTS} requests; lower the rate or the duration",
            raw.rate,
            format_duration(duration)
        ));
    }
    let drain = raw.drain.map_or(Duration::from_secs(60), |d| d.0);
    if drain > MAX_TIME {
        return Err("load.drain: use at most 24h".to_owned());
    }
    Ok(Load {
        rate: raw.rate,
        duration,
        arrivals: raw.arrivals.unwrap_or(Arrivals::Poisson),
        drain,
    })
}

fn check_behaviour(field: &str, b: &Behaviour) -> Result<(), String> {
    if !(0.0..=1.0).contains(&b.error_rate) {
        return Err(format!(
            "{field}.error_rate: {} is not allowed; use a share in [0, 1] (0.05 is 5%)",
            b.error_rate
        ));
    }
    check_latency(&format!("{field}.latency"), &b.latency)?;
    if b.retry_after.is_some_and(|d| d > MAX_TIME) {
        return Err(format!("{field}.retry_after: use at most 24h"));
    }
    Ok(())
}

/// Durations of at most a day, a lognormal mean above 0, a uniform `min` at most its `max`, in
/// every part of a mixture.
fn check_latency(field: &str, latency: &Latency) -> Result<(), String> {
    let too_long = |d: Duration| d > MAX_TIME;
    match latency {
        Latency::Fixed(d) if too_long(*d) => {}
        Latency::Fixed(_) => return Ok(()),
        Latency::Uniform { min, max } => {
            if min > max {
                return Err(format!(
                    "{field}: a uniform latency's min ({}) is above its max ({}); swap them",
                    format_duration(*min),
                    format_duration(*max)
                ));
            }
            if !too_long(*max) {
                return Ok(());
            }
        }
        Latency::Normal { mean, sd } => {
            if !(too_long(*mean) || too_long(*sd)) {
                return Ok(());
            }
        }
        Latency::LogNormal { mean, sd } => {
            if mean.is_zero() {
                return Err(format!("{field}: a lognormal latency needs a mean above 0"));
            }
            if !(too_long(*mean) || too_long(*sd)) {
                return Ok(());
            }
        }
        Latency::Mixture(parts) => {
            for (i, (_, part)) in parts.iter().enumerate() {
                check_latency(&format!("{field}.parts[{i}]"), part)?;
            }
            return Ok(());
        }
    }
    Err(format!("{field}: use durations of at most 24h"))
}

fn check_dependency(raw: RawDependency, dep: &str) -> Result<Dependency, String> {
    if raw.phase.len() > MAX_PHASES {
        return Err(format!(
            "{dep}.phase: {} phases; a dependency may have at most {MAX_PHASES}",
            raw.phase.len()
        ));
    }
    let baseline = Behaviour {
        latency: raw.latency,
        error_rate: raw.error_rate.unwrap_or(0.0),
        retry_after: raw.retry_after.map(|d| d.0),
        outage: raw.outage,
    };
    check_behaviour(dep, &baseline)?;
    if raw.max_concurrency == Some(0) {
        return Err(format!(
            "{dep}.max_concurrency: 0 would refuse every call; use at least 1, or leave it out for no limit"
        ));
    }
    if raw.max_queue.is_some() && raw.max_concurrency.is_none() {
        return Err(format!(
            "{dep}.max_queue: there is no queue without max_concurrency; set both, or neither"
        ));
    }
    let mut phases: Vec<Phase> = Vec::with_capacity(raw.phase.len());
    for (i, p) in raw.phase.into_iter().enumerate() {
        let field = format!("{dep}.phase[{i}] ({:?})", p.name);
        if p.name.trim().is_empty() {
            return Err(format!("{dep}.phase[{i}].name: give the phase a name"));
        }
        if phases.iter().any(|q| q.name == p.name) {
            return Err(format!("{field}.name: another phase has this name"));
        }
        let (start, end) = (p.start.0, p.end.0);
        if end <= start || end > MAX_TIME {
            return Err(format!(
                "{field}: `end` ({}) must be after `start` ({}) and at most 24h",
                format_duration(end),
                format_duration(start)
            ));
        }
        if let Some(previous) = phases.last()
            && start < previous.end
        {
            return Err(format!(
                "{field}.start: {} is before the end of the previous phase ({}); list phases in order, without overlap",
                format_duration(start),
                format_duration(previous.end)
            ));
        }
        let behaviour = Behaviour {
            latency: p.latency.unwrap_or_else(|| baseline.latency.clone()),
            error_rate: p.error_rate.unwrap_or(baseline.error_rate),
            retry_after: p.retry_after.map(|d| d.0).or(baseline.retry_after),
            outage: p.outage.or(baseline.outage),
        };
        check_behaviour(&field, &behaviour)?;
        phases.push(Phase {
            name: p.name,
            start,
            end,
            behaviour,
        });
    }
    Ok(Dependency {
        baseline,
        phases,
        max_concurrency: raw.max_concurrency,
        max_queue: raw.max_queue,
    })
}

fn config_error(field: &str, e: &ConfigError) -> String {
    format!("{field}: {e}")
}

fn policy(raw: RawPolicy, table: &toml::Table, default_name: String) -> Result<Policy, String> {
    // Build each policy once, only to run the library's own validation now rather than mid-run.
    if let Some(retry) = raw.retry {
        Retry::new(retry).map_err(|e| config_error("policy.retry", &e))?;
    }
    if let Some(hedge) = raw.hedge {
        if raw.retry.is_some() {
            return Err(
                "policy.hedge: a policy retries or hedges, not both (as in gRPC); remove [policy.retry] or [policy.hedge]"
                    .to_owned(),
            );
        }
        Hedge::new(hedge).map_err(|e| config_error("policy.hedge", &e))?;
    }
    if let Some(budget) = raw.budget {
        if raw.retry.is_none() && raw.hedge.is_none() {
            return Err(
                "policy.budget: a retry budget limits retries and hedges; add [policy.retry] or [policy.hedge], or remove the budget"
                    .to_owned(),
            );
        }
        RetryBudget::new(budget).map_err(|e| config_error("policy.budget", &e))?;
    }
    if let Some(breaker) = raw.breaker {
        CircuitBreaker::new(breaker).map_err(|e| config_error("policy.breaker", &e))?;
    }
    if let Some(timeout) = raw.attempt_timeout {
        timeout
            .validate()
            .map_err(|e| config_error("policy.attempt_timeout", &e))?;
    }
    let timeout = raw.timeout.map(|d| d.0);
    if timeout.is_some_and(|t| t.is_zero() || t > MAX_TIME) {
        return Err(
            "policy.timeout: use a duration above 0 and at most 24h, or leave it out for no deadline"
                .to_owned(),
        );
    }
    if let Some(throttle) = raw.throttle {
        throttle
            .validate()
            .map_err(|e| config_error("policy.throttle", &e))?;
    }
    if let Some(rate) = raw.rate_limit {
        rate.validate()
            .map_err(|e| config_error("policy.rate_limit", &e))?;
    }
    if let Some(limit) = raw.limit {
        ConcurrencyLimit::new(limit).map_err(|e| config_error("policy.limit", &e))?;
    }
    if raw.wait_for_probe && raw.breaker.is_none() {
        return Err("policy.wait_for_probe: there is no [policy.breaker] to wait for".to_owned());
    }
    let settings = match table.get("policy") {
        Some(toml::Value::Table(policy)) => policy
            .iter()
            .filter(|(key, _)| key.as_str() != "name")
            .map(|(key, value)| format!("{key} = {}", inline(value)))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Policy {
        name: raw.name.unwrap_or(default_name),
        retry: raw.retry,
        hedge: raw.hedge,
        budget: raw.budget,
        breaker: raw.breaker,
        attempt_timeout: raw.attempt_timeout,
        timeout,
        fallback: raw.fallback,
        wait_for_probe: raw.wait_for_probe,
        throttle: raw.throttle,
        rate_limit: raw.rate_limit,
        limit: raw.limit,
        settings,
        dependencies: Vec::new(),
    })
}

/// A TOML value on one line, tables inline.
fn inline(value: &toml::Value) -> String {
    match value {
        toml::Value::Table(table) => {
            let items: Vec<String> = table
                .iter()
                .map(|(k, v)| format!("{k} = {}", inline(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
        toml::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(x) => format!("{x:?}"),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, String> {
        let dir =
            std::env::temp_dir().join(format!("staunch-lab-scenario-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{:x}.toml", fastrand::u64(..)));
        std::fs::write(&file, text).unwrap();
        let result = Scenario::from_file(&file).map_err(|e| e.message().to_owned());
        let _ = std::fs::remove_file(&file);
        result
    }

    const BASE: &str = "[load]\nrate = 10\nduration = \"1m\"\n[dependency]\nlatency = \"20ms\"\nerror_rate = 0.1\nretry_after = \"1s\"\n";

    #[test]
    fn phases_override_the_baseline_and_only_what_they_name() {
        let s = parse(&format!(
            "{BASE}[[dependency.phase]]\nname = \"slow\"\nstart = \"10s\"\nend = \"20s\"\nlatency = {{ distribution = \"normal\", mean = \"1s\", sd = \"100ms\" }}\n\
             [[dependency.phase]]\nname = \"down\"\nstart = \"30s\"\nend = \"40s\"\noutage = \"refused\"\n[policy]\n"
        ))
        .unwrap();
        let secs = Duration::from_secs;
        let d = &s.dependency;
        assert_eq!(d.at(secs(5)), &d.baseline);
        let slow = d.at(secs(10));
        assert_eq!(slow.error_rate, 0.1);
        assert_eq!(slow.retry_after, Some(secs(1)));
        assert!(matches!(slow.latency, Latency::Normal { .. }));
        assert_eq!(d.at(secs(20)), &d.baseline); // end is exclusive
        assert_eq!(d.at(secs(35)).outage, Some(Outage::Refused));
        assert_eq!(s.name, s.policy.name); // both default to the file's stem
        assert_eq!(s.load.arrivals, Arrivals::Poisson);
        assert_eq!(s.load.drain, secs(60));
    }

    #[test]
    fn the_policy_is_echoed_in_file_order() {
        let s = parse(&format!(
            "{BASE}[policy]\nname = \"p\"\ntimeout = \"2s\"\nretry = {{ max_attempts = 2 }}\nfallback = true\n"
        ))
        .unwrap();
        assert_eq!(s.policy.name, "p");
        assert_eq!(
            s.policy.settings,
            [
                "timeout = \"2s\"",
                "retry = { max_attempts = 2 }",
                "fallback = true"
            ]
        );
        assert_eq!(s.policy.retry.unwrap().max_attempts(), 2);
        assert!(s.policy.fallback && s.policy.breaker.is_none());
    }

    #[test]
    fn latency_draws_have_the_asked_mean() {
        let mut rng = fastrand::Rng::with_seed(1);
        let ms = Duration::from_millis;
        for latency in [
            Latency::Fixed(ms(40)),
            Latency::Normal {
                mean: ms(40),
                sd: ms(5),
            },
            Latency::LogNormal {
                mean: ms(40),
                sd: ms(20),
            },
            Latency::Uniform {
                min: ms(30),
                max: ms(50),
            },
            Latency::Mixture(vec![
                (3.0, Latency::Fixed(ms(20))),
                (1.0, Latency::Fixed(ms(100))),
            ]),
        ] {
            let n = 20_000;
            let mean: f64 = (0..n)
                .map(|_| latency.sample(&mut rng).as_secs_f64())
                .sum::<f64>()
                / f64::from(n);
            assert!((mean - 0.040).abs() < 0.001, "{latency:?}: mean {mean}");
        }
        let spiky = Latency::Normal {
            mean: ms(1),
            sd: ms(100),
        };
        assert!((0..1000).all(|_| spiky.sample(&mut rng) < Duration::from_secs(2)));
    }

    #[test]
    fn a_mixture_draws_its_parts_by_weight_and_parses_as_the_issue_writes_it() {
        let s = parse(
            "[load]\nrate = 10\nduration = \"1m\"\n[dependency]\nlatency = { distribution = \"mixture\", parts = [ { weight = 0.99, distribution = \"uniform\", min = \"5ms\", max = \"15ms\" }, { weight = 0.01, distribution = \"constant\", value = \"1s\" } ] }\n[policy]\nhedge = { max_attempts = 2, delay = \"20ms\" }\n",
        )
        .unwrap();
        let latency = &s.dependency.baseline.latency;
        let mut rng = fastrand::Rng::with_seed(2);
        let n = 100_000;
        let draws: Vec<Duration> = (0..n).map(|_| latency.sample(&mut rng)).collect();
        let slow = draws
            .iter()
            .filter(|&&d| d == Duration::from_secs(1))
            .count();
        assert!((800..1200).contains(&slow), "{slow} slow draws of {n}");
        let ms = Duration::from_millis;
        assert!(
            draws
                .iter()
                .all(|&d| d == Duration::from_secs(1) || (ms(5) <= d && d <= ms(15)))
        );
        assert_eq!(s.policy.hedge.unwrap().max_attempts(), 2);
    }

    #[test]
    fn missing_tables_are_named() {
        assert!(parse("[policy]\n").unwrap_err().contains("[load]"));
        let no_dependency = "[load]\nrate = 1\nduration = \"1s\"\n[policy]\n";
        assert!(parse(no_dependency).unwrap_err().contains("[dependency]"));
        let queue = format!("{BASE}max_queue = 3\n[policy]\n");
        assert!(parse(&queue).unwrap_err().contains("max_concurrency"));
    }

    #[test]
    fn the_overload_policies_read_from_the_policy_table() {
        let s = parse(&format!(
            "{BASE}[policy]\nthrottle = {{ k = 1.5 }}\nrate_limit = {{ calls = 100, period = \"1s\", burst = 10 }}\nlimit = {{ kind = \"aimd\", min_limit = 5, max_limit = 50, initial_limit = 10, max_queue = 20, max_wait = \"50ms\" }}\n"
        ))
        .unwrap();
        assert_eq!(
            s.policy.throttle,
            Some(staunch::limit::ThrottleConfig::new().with_k(1.5))
        );
        assert_eq!(
            s.policy.rate_limit,
            Some(staunch::limit::RateConfig::per_second(100).with_burst(10))
        );
        assert!(s.policy.limit.unwrap().is_adaptive());
        let err = parse(&format!(
            "{BASE}[policy]\nlimit = {{ kind = \"fixed\", limit = 0 }}\n"
        ))
        .unwrap_err();
        assert!(
            err.contains("policy.limit") && err.contains("`limit`"),
            "{err}"
        );
        let err = parse(&format!("{BASE}[policy]\nthrottle = {{ k = 0.5 }}\n")).unwrap_err();
        assert!(
            err.contains("policy.throttle") && err.contains("`k`"),
            "{err}"
        );
    }

    const FANOUT: &str = "[load]\nrate = 10\nduration = \"1m\"\n\
        [dependencies.pricing]\nlatency = \"40ms\"\n\
        [[dependencies.pricing.phase]]\nname = \"slow\"\nstart = \"10s\"\nend = \"20s\"\nlatency = \"1s\"\n\
        [dependencies.inventory]\nlatency = \"20ms\"\n";

    #[test]
    fn named_dependencies_are_called_in_file_order_by_default() {
        let s = parse(&format!(
            "{FANOUT}[policy]\nname = \"p\"\ntimeout = \"5s\"\n[policy.pricing]\nfallback = true\nattempt_timeout = {{ fixed = \"500ms\" }}\n[policy.inventory]\nretry = {{ max_attempts = 2 }}\n"
        ))
        .unwrap();
        assert!(s.calls.named);
        assert_eq!(s.calls.names(), ["pricing", "inventory"]);
        assert_eq!(s.calls.steps, [vec![0], vec![1]]);
        assert_eq!(s.dependency, s.calls.dependencies[0].1);
        let p = &s.policy;
        assert_eq!(p.timeout, Some(Duration::from_secs(5)));
        assert!(p.retry.is_none() && !p.fallback);
        assert_eq!(p.dependencies.len(), 2);
        assert!(p.dependencies[0].1.fallback);
        assert_eq!(p.dependencies[1].1.retry.unwrap().max_attempts(), 2);
        assert_eq!(
            p.settings,
            [
                "timeout = \"5s\"",
                "pricing: fallback = true",
                "pricing: attempt_timeout = { fixed = \"500ms\" }",
                "inventory: retry = { max_attempts = 2 }"
            ]
        );
    }

    #[test]
    fn a_dependency_policy_hedges_or_limits_as_a_policy_does() {
        let s = parse(&format!(
            "{FANOUT}[policy]\n[policy.pricing]\nhedge = {{ max_attempts = 3, delay = \"20ms\" }}\nbudget = {{ kind = \"ratio\", ratio = 0.1 }}\n[policy.inventory]\nlimit = {{ kind = \"fixed\", limit = 4 }}\nthrottle = {{ k = 2.0 }}\nrate_limit = {{ calls = 10, period = \"1s\" }}\n"
        ))
        .unwrap();
        let (pricing, inventory) = (&s.policy.dependencies[0].1, &s.policy.dependencies[1].1);
        assert_eq!(pricing.hedge.unwrap().max_attempts(), 3);
        assert!(pricing.budget.is_some() && pricing.limit.is_none());
        assert!(inventory.limit.is_some() && inventory.throttle.is_some());
        assert!(inventory.rate_limit.is_some() && inventory.hedge.is_none());
    }

    #[test]
    fn a_request_runs_steps_in_sequence_each_in_parallel() {
        let s = parse(&format!(
            "{FANOUT}[dependencies.auth]\nlatency = \"5ms\"\n[request]\nsequence = [\"auth\", [\"pricing\", \"inventory\"]]\n[policy]\n"
        ))
        .unwrap();
        assert_eq!(s.calls.steps, [vec![2], vec![0, 1]]);
        let s = parse(&format!(
            "{FANOUT}[request]\nparallel = [\"inventory\", \"pricing\"]\n[policy]\n"
        ))
        .unwrap();
        assert_eq!(s.calls.steps, [vec![1, 0]]);
        // A policy that names no dependency is every dependency's.
        assert!(s.policy.dependencies.is_empty());
    }

    #[test]
    fn fan_out_errors_name_the_field() {
        let cases = [
            (
                "[request]\nsequence = [\"pricing\", \"stock\"]\n[policy]\n",
                "no dependency \"stock\"",
            ),
            (
                "[request]\nsequence = [\"pricing\"]\nparallel = [\"inventory\"]\n[policy]\n",
                "not both",
            ),
            ("[request]\n[policy]\n", "sequence = "),
            (
                "[request]\nsequence = [\"pricing\"]\n[policy]\n",
                "dependencies.inventory: no request calls it",
            ),
            (
                "[request]\nsequence = [\"pricing\", \"inventory\", \"pricing\"]\n[policy]\n",
                "pricing is called twice",
            ),
            (
                "[request]\nsequence = [[]]\n[policy]\n",
                "calls no dependency",
            ),
            (
                "[policy]\nretry = { max_attempts = 2 }\n[policy.pricing]\nfallback = true\n",
                "policy.retry: with a policy per dependency",
            ),
            (
                "[policy]\n[policy.pricing]\nretry = { max_attempts = 0 }\n",
                "policy.pricing.retry",
            ),
            (
                "[policy]\n[policy.pricing]\nretries = 3\n",
                "policy.pricing: unknown field `retries`",
            ),
            (
                "[policy]\n[policy.pricing]\nretry = {}\nhedge = { delay = \"20ms\" }\n",
                "policy.pricing.hedge: a policy retries or hedges",
            ),
            (
                "[policy]\n[policy.inventory]\nthrottle = { k = 0.5 }\n",
                "policy.inventory.throttle",
            ),
            (
                "[policy]\n[policy.inventory]\nlimit = { kind = \"fixed\", limit = 0 }\n",
                "policy.inventory.limit",
            ),
            (
                "[policy]\n[policy.pricing]\nname = \"x\"\n",
                "policy.pricing.name",
            ),
            (
                "[policy]\npricing = 3\n",
                "policy.pricing: the policy of dependency pricing is a table",
            ),
            (
                "[policy]\n[policy.payments]\nfallback = true\n",
                "unknown field `payments`",
            ),
            ("[dependency]\nlatency = \"1ms\"\n[policy]\n", "not both"),
            (
                "[dependencies.x]\nlatency = \"1ms\"\nerror_rate = 2.0\n[request]\nsequence = [\"pricing\", \"inventory\", \"x\"]\n[policy]\n",
                "dependencies.x.error_rate",
            ),
            (
                "[dependencies.y]\nlatency = \"1ms\"\nmax_queue = 3\n[policy]\n",
                "dependencies.y.max_queue",
            ),
        ];
        for (extra, needle) in cases {
            let err = parse(&format!("{FANOUT}{extra}")).unwrap_err();
            assert!(err.contains(needle), "{extra:?}: no {needle:?} in {err}");
        }
        let err =
            parse("[load]\nrate = 1\nduration = \"1s\"\n[dependencies]\n[policy]\n").unwrap_err();
        assert!(err.contains("at least one"), "{err}");
        let err = parse(&format!("{BASE}[request]\nsequence = [\"a\"]\n[policy]\n")).unwrap_err();
        assert!(err.contains("[request]"), "{err}");
        let many: String = (0..=MAX_DEPENDENCIES)
            .map(|i| format!("[dependencies.d{i}]\nlatency = \"1ms\"\n"))
            .collect();
        let err = parse(&format!(
            "[load]\nrate = 1\nduration = \"1s\"\n{many}[policy]\n"
        ))
        .unwrap_err();
        assert!(err.contains("at most 16"), "{err}");
    }
}
