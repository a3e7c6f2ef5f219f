//! The run: staunch's real [`Pipeline`] against a simulated dependency, in tokio's paused time.
//!
//! One current-thread runtime with a paused clock is the virtual clock: every timer in the
//! library and in the dependency is `tokio::time`, and when every task is waiting the runtime
//! jumps to the next timer, so minutes of traffic take milliseconds. One task per request on a
//! [`LocalSet`]; nothing reads the wall clock, and every random draw comes from a generator
//! seeded from the run's seed, so a run is a function of the scenario, the policy and the seed.
//!
//! A run keeps no sample: it tells an [`Observer`] what happens (an arrival, a call, a request's
//! end) and the observer keeps the numbers it wants, so memory follows the requests in flight,
//! not the length of the run. The work is bounded: every arrival and every dependency call is an
//! event, and a run that reaches [`Limits::max_events`] stops with [`RunError::Stopped`].

use std::cell::{Cell, RefCell};
use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use staunch::breaker::{CircuitBreaker, Reason, State};
use staunch::classify::Class;
use staunch::fallback::{Fallback, FallbackOn, FromFn};
use staunch::retry::RetryBudget;
use staunch::{ConfigError, Error, Pipeline, Retry, StopReason};
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::task::LocalSet;
use tokio::time::Instant;

use super::scenario::{Arrivals, Dependency, Load, Outage, Policy};
use crate::progress::Progress;

/// How long a refused connection takes to fail.
pub const REFUSED_AFTER: Duration = Duration::from_millis(1);
/// How long an overloaded dependency takes to refuse a call beyond its `max_queue`.
pub const OVERLOAD_AFTER: Duration = Duration::from_millis(1);
/// A blackholed call's wait: far beyond any run, so that only a timeout ends it.
const BLACKHOLE: Duration = Duration::from_secs(7 * 24 * 3600);

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The dependency answered.
    Success,
    /// The fallback answered, for a call that stopped for this reason.
    Fallback(StopReason),
    /// The request failed for this reason.
    Failed(StopReason),
    /// Still running when the run ended (`load.drain` after the last arrival).
    Unfinished,
}

/// One request of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Request {
    /// When it arrived, since the start of the run.
    pub start: Duration,
    /// When it got its answer, if it did.
    pub end: Option<Duration>,
    /// How it ended.
    pub outcome: Outcome,
    /// How many calls it made to the dependency.
    pub calls: u32,
}

/// One breaker state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// When, since the start of the run.
    pub at: Duration,
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// Why.
    pub reason: Reason,
}

/// Everything a run observed, request by request: what [`run`] returns, for tests and small
/// runs (its memory grows with the run; the report uses [`run_with`] and keeps counts instead).
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Every request, in arrival order.
    pub requests: Vec<Request>,
    /// The start of every dependency call, in order.
    pub calls: Vec<Duration>,
    /// The breaker's state changes, in order (empty without a breaker).
    pub transitions: Vec<Transition>,
    /// Whether the policy has a breaker.
    pub has_breaker: bool,
}

/// What the simulated dependency returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Fresh,
    Fallback(StopReason),
}

/// The simulated dependency's errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DepError {
    /// Connection refused (a hard outage) or never answered.
    Refused,
    /// A 503, with the server's Retry-After hint if it gave one.
    Unavailable(Option<Duration>),
}

type Classifier = fn(&Result<Answer, DepError>) -> Class;
type OnFailure = fn(&Error<DepError>) -> Ready<Answer>;
type SimPipeline = Pipeline<Classifier, Fallback<FromFn<OnFailure>>>;

fn classify(result: &Result<Answer, DepError>) -> Class {
    match result {
        Ok(_) => Class::Success,
        Err(DepError::Unavailable(Some(hint))) => Class::RetryAfter(*hint),
        Err(_) => Class::Transient,
    }
}

fn fallback_answer(error: &Error<DepError>) -> Ready<Answer> {
    ready(Answer::Fallback(error.reason()))
}

/// A 64-bit mix (splitmix64's finaliser), to derive independent seeds.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The arrival times of a run: the same for every policy given the seed.
pub fn arrivals(load: &Load, seed: u64) -> Vec<Duration> {
    ArrivalTimes::new(load, seed).collect()
}

/// The arrival times of a run, drawn one at a time: a run never holds them all.
#[derive(Debug, Clone)]
pub struct ArrivalTimes {
    rate: f64,
    end: f64,
    arrivals: Arrivals,
    rng: fastrand::Rng,
    /// Uniform: the index of the next arrival; Poisson: unused.
    next: u64,
    /// Poisson: the time of the last arrival, in seconds.
    t: f64,
}

impl ArrivalTimes {
    /// The arrivals of `load` with `seed`.
    pub fn new(load: &Load, seed: u64) -> Self {
        Self {
            rate: load.rate,
            end: load.duration.as_secs_f64(),
            arrivals: load.arrivals,
            rng: fastrand::Rng::with_seed(mix(seed ^ 0xA441_7A15)),
            next: 0,
            t: 0.0,
        }
    }
}

impl Iterator for ArrivalTimes {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        match self.arrivals {
            Arrivals::Uniform => {
                let n = (self.rate * self.end).floor() as u64;
                if self.next >= n {
                    return None;
                }
                let at = Duration::from_secs_f64(self.next as f64 / self.rate);
                self.next += 1;
                Some(at)
            }
            Arrivals::Poisson => {
                if self.t >= self.end {
                    return None;
                }
                self.t += -(1.0 - self.rng.f64()).ln() / self.rate;
                (self.t < self.end).then(|| Duration::from_secs_f64(self.t))
            }
        }
    }
}

/// What a run reports as it goes: the observer keeps the numbers it needs.
///
/// Calls come in the order of virtual time, which never goes back, and so do ends.
pub trait Observer {
    /// Request number `request` arrived at `at` (since the start of the run).
    fn arrived(&mut self, request: u64, at: Duration);
    /// A call to the dependency started at `at`, for request `request`, which arrived at
    /// `arrival`.
    fn called(&mut self, request: u64, arrival: Duration, at: Duration);
    /// A request ended at `end` with `outcome`, after `calls` calls to the dependency. Requests
    /// still running when the run ends are never reported: they are the unfinished ones.
    fn finished(
        &mut self,
        request: u64,
        arrival: Duration,
        end: Duration,
        outcome: Outcome,
        calls: u32,
    );
}

/// The most events (arrivals and dependency calls) one policy's run may take by default: ten to
/// thirty seconds of work on a laptop.
pub const DEFAULT_MAX_EVENTS: u64 = 10_000_000;

/// The most requests one run may hold in flight by default: each takes about 3 KB while it
/// runs, so this is about 300 MB.
pub const DEFAULT_MAX_IN_FLIGHT: u64 = 100_000;

/// Bounds on a run's work and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most events one run may take: each arrival and each call to the dependency is one.
    pub max_events: u64,
    /// The most requests in flight at once: what a run's memory follows.
    pub max_in_flight: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_events: DEFAULT_MAX_EVENTS,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// Which of the [`Limits`] a run reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ceiling {
    /// [`Limits::max_events`].
    Events,
    /// [`Limits::max_in_flight`].
    InFlight,
}

/// Why a run did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// The policy is invalid, or the runtime could not start.
    Invalid(String),
    /// The run would exceed [`Limits::max_events`], as known before it started: refused.
    Refused(String),
    /// The run reached one of its [`Limits`] and was stopped there.
    Stopped {
        /// The policy that was running.
        policy: String,
        /// The limit it reached.
        ceiling: Ceiling,
        /// The requests in flight then.
        in_flight: u64,
        /// The events it took.
        events: u64,
        /// The virtual time it had reached.
        at: Duration,
        /// The requests that had arrived.
        requests: u64,
    },
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(message) | Self::Refused(message) => f.write_str(message),
            Self::Stopped {
                policy,
                ceiling: Ceiling::Events,
                events,
                at,
                requests,
                ..
            } => write!(
                f,
                "policy {policy}: stopped at {} of virtual time after {events} events ({requests} \
                 arrivals, the rest calls to the dependency), the ceiling (--max-events): the \
                 policy makes too many calls; bound its retries (max_attempts, a budget, a \
                 breaker, a timeout), shorten the load, or raise --max-events",
                super::format_duration(*at)
            ),
            Self::Stopped {
                policy,
                ceiling: Ceiling::InFlight,
                in_flight,
                at,
                ..
            } => write!(
                f,
                "policy {policy}: stopped at {} of virtual time with {in_flight} requests in \
                 flight, the ceiling (--max-in-flight): requests wait without end (a dependency \
                 that never answers, and no timeout?); give the policy a timeout or an \
                 attempt_timeout, lower load.rate, or raise --max-in-flight",
                super::format_duration(*at)
            ),
        }
    }
}

impl std::error::Error for RunError {}

/// The count of a run's events against its ceiling.
struct Work {
    events: Cell<u64>,
    max: u64,
    stop: Notify,
}

impl Work {
    /// Counts one event; false (and the run is told to stop) past the ceiling.
    fn take(&self) -> bool {
        let events = self.events.get() + 1;
        self.events.set(events);
        if events > self.max {
            self.stop.notify_one();
            return false;
        }
        true
    }
}

/// The dependency while a run goes on.
struct Server<O> {
    dependency: Dependency,
    origin: Instant,
    seed: u64,
    /// The dependency's workers, when `max_concurrency` is set: a fair (FIFO) semaphore.
    slots: Option<Arc<Semaphore>>,
    /// Calls waiting for a worker.
    queued: Rc<Cell<u32>>,
    work: Work,
    observer: RefCell<O>,
}

impl<O: Observer> Server<O> {
    /// Call `attempt` (the count so far, kept by the request) of `request`, which arrived at
    /// `arrival`.
    async fn call(
        &self,
        request: u64,
        arrival: Duration,
        attempt: &Cell<u32>,
    ) -> Result<Answer, DepError> {
        if !self.work.take() {
            // Past the ceiling: the run is stopping; this call never ends.
            std::future::pending::<()>().await;
        }
        let now = self.origin.elapsed();
        self.observer.borrow_mut().called(request, arrival, now);
        attempt.set(attempt.get() + 1);
        let attempt = attempt.get();
        // The draw for (request, attempt) is the same whatever the policy: common random numbers
        // make a side-by-side comparison fair.
        let mut rng =
            fastrand::Rng::with_seed(mix(self.seed ^ mix(request << 16 ^ u64::from(attempt))));
        let behaviour = self.dependency.at(now);
        match behaviour.outage {
            Some(Outage::Refused) => {
                tokio::time::sleep(REFUSED_AFTER).await;
                return Err(DepError::Refused);
            }
            Some(Outage::Blackhole) => {
                tokio::time::sleep(BLACKHOLE).await;
                return Err(DepError::Refused);
            }
            None => {}
        }
        let latency = behaviour.latency.sample(&mut rng);
        let answer = if rng.f64() < behaviour.error_rate {
            Err(DepError::Unavailable(behaviour.retry_after))
        } else {
            Ok(Answer::Fresh)
        };
        let Some(slots) = &self.slots else {
            tokio::time::sleep(latency).await;
            return answer;
        };
        if self
            .dependency
            .max_queue
            .is_some_and(|max| self.queued.get() >= max)
        {
            tokio::time::sleep(OVERLOAD_AFTER).await;
            return Err(DepError::Unavailable(behaviour.retry_after));
        }
        // The server's side runs on its own: a caller that times out does not cancel the work it
        // queued, as with a real server, which is what turns timeouts and retries into overload.
        self.queued.set(self.queued.get() + 1);
        let (slots, queued) = (Arc::clone(slots), Rc::clone(&self.queued));
        let (done, answered) = oneshot::channel();
        tokio::task::spawn_local(async move {
            let permit = slots.acquire_owned().await;
            queued.set(queued.get() - 1);
            tokio::time::sleep(latency).await;
            drop(permit);
            let _ = done.send(answer);
        });
        answered.await.unwrap_or(Err(DepError::Refused))
    }
}

fn build(
    policy: &Policy,
    origin: Instant,
    transitions: &Arc<Mutex<Vec<Transition>>>,
) -> Result<SimPipeline, ConfigError> {
    let mut pipeline = Pipeline::new().classify(classify as Classifier);
    if let Some(config) = policy.retry {
        let mut retry = Retry::new(config)?.classify(classify as Classifier);
        if let Some(budget) = policy.budget {
            retry = retry.with_budget(RetryBudget::new(budget)?);
        }
        pipeline = pipeline.retry(retry);
    }
    if let Some(config) = policy.breaker {
        let log = Arc::clone(transitions);
        let breaker = CircuitBreaker::builder(config)
            .name("dependency")
            .on_state_change(move |change| {
                let at = origin.elapsed();
                if let Ok(mut log) = log.lock() {
                    log.push(Transition {
                        at,
                        from: change.from,
                        to: change.to,
                        reason: change.reason,
                    });
                }
            })
            .build()?;
        pipeline = pipeline.breaker(breaker);
    }
    if let Some(timeout) = policy.attempt_timeout {
        pipeline = pipeline.attempt_timeout(timeout)?;
    }
    if let Some(timeout) = policy.timeout {
        pipeline = pipeline.timeout(timeout);
    }
    if policy.wait_for_probe {
        pipeline = pipeline.wait_for_probe();
    }
    let on = if policy.fallback {
        FallbackOn::DEFAULT
    } else {
        FallbackOn::NONE
    };
    Ok(pipeline.with_fallback(Fallback::from_fn(fallback_answer as OnFailure).on(on)))
}

/// Runs `policy` against `dependency` under `load`, in virtual time, and returns every request
/// (see [`Run`]); with the default [`Limits`].
///
/// # Errors
///
/// As [`run_with`].
pub fn run(
    load: &Load,
    dependency: &Dependency,
    policy: &Policy,
    seed: u64,
) -> Result<Run, RunError> {
    let (trace, transitions) = run_with(
        load,
        dependency,
        policy,
        seed,
        Limits::default(),
        Trace::default(),
        &Progress::off(),
    )?;
    let requests = trace
        .requests
        .into_iter()
        .zip(trace.calls_per_request)
        .map(|((start, end), calls)| {
            end.unwrap_or(Request {
                start,
                end: None,
                outcome: Outcome::Unfinished,
                calls,
            })
        })
        .collect();
    Ok(Run {
        requests,
        calls: trace.calls,
        transitions,
        has_breaker: policy.breaker.is_some(),
    })
}

/// An observer that keeps everything: the requests in arrival order and every call's start.
#[derive(Debug, Default)]
struct Trace {
    requests: Vec<(Duration, Option<Request>)>,
    calls: Vec<Duration>,
    calls_per_request: Vec<u32>,
}

impl Observer for Trace {
    fn arrived(&mut self, _request: u64, at: Duration) {
        self.requests.push((at, None));
        self.calls_per_request.push(0);
    }

    fn called(&mut self, request: u64, _arrival: Duration, at: Duration) {
        self.calls.push(at);
        if let Some(calls) = usize::try_from(request)
            .ok()
            .and_then(|i| self.calls_per_request.get_mut(i))
        {
            *calls += 1;
        }
    }

    fn finished(
        &mut self,
        request: u64,
        arrival: Duration,
        end: Duration,
        outcome: Outcome,
        calls: u32,
    ) {
        if let Some(slot) = usize::try_from(request)
            .ok()
            .and_then(|i| self.requests.get_mut(i))
        {
            slot.1 = Some(Request {
                start: arrival,
                end: Some(end),
                outcome,
                calls,
            });
        }
    }
}

/// Runs `policy` against `dependency` under `load`, in virtual time, telling `observer` what
/// happens; returns the observer and the breaker's state changes. `progress` counts arrivals.
///
/// # Errors
///
/// [`RunError::Invalid`]: the policy is invalid (a file read by
/// [`Scenario::from_file`](super::Scenario::from_file) has been checked already), or the runtime
/// could not be built. [`RunError::Stopped`]: the run reached `limits.max_events`.
pub fn run_with<O: Observer + 'static>(
    load: &Load,
    dependency: &Dependency,
    policy: &Policy,
    seed: u64,
    limits: Limits,
    observer: O,
    progress: &Progress,
) -> Result<(O, Vec<Transition>), RunError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| RunError::Invalid(format!("cannot start the simulation's runtime: {e}")))?;
    let local = LocalSet::new();
    let result = local.block_on(&runtime, async {
        // The library's unseeded jitter generators fork this thread's generator: seeding it
        // fixes every backoff delay of the run.
        fastrand::seed(mix(seed ^ 0x0B5E_55ED));
        let origin = Instant::now();
        let transitions = Arc::new(Mutex::new(Vec::new()));
        let pipeline =
            build(policy, origin, &transitions).map_err(|e| RunError::Invalid(e.to_string()))?;
        let server = Rc::new(Server {
            dependency: dependency.clone(),
            origin,
            seed: mix(seed),
            slots: dependency
                .max_concurrency
                .map(|n| Arc::new(Semaphore::new(n as usize))),
            queued: Rc::new(Cell::new(0)),
            work: Work {
                events: Cell::new(0),
                max: limits.max_events,
                stop: Notify::new(),
            },
            observer: RefCell::new(observer),
        });
        let pipeline = Rc::new(pipeline);
        let drain_until = origin + load.duration + load.drain;
        // Requests in flight, and a wake-up for when the last one ends. No join handle is kept:
        // a finished request's task is freed at once.
        let in_flight = Rc::new((Cell::new(0_u64), Notify::new()));
        let arrived = Cell::new(0_u64);
        let all_done = async {
            for (i, at) in ArrivalTimes::new(load, seed).enumerate() {
                if in_flight.0.get() >= limits.max_in_flight {
                    return Some(Ceiling::InFlight);
                }
                tokio::time::sleep_until(origin + at).await;
                if !server.work.take() {
                    std::future::pending::<()>().await;
                }
                let i = i as u64;
                arrived.set(i + 1);
                progress.set(i + 1);
                server.observer.borrow_mut().arrived(i, at);
                in_flight.0.set(in_flight.0.get() + 1);
                let (pipeline, server, in_flight) = (
                    Rc::clone(&pipeline),
                    Rc::clone(&server),
                    Rc::clone(&in_flight),
                );
                tokio::task::spawn_local(async move {
                    let attempts = Cell::new(0_u32);
                    let result = pipeline.call(|| server.call(i, at, &attempts)).await;
                    let outcome = match result {
                        Ok(Answer::Fresh) => Outcome::Success,
                        Ok(Answer::Fallback(reason)) => Outcome::Fallback(reason),
                        Err(error) => Outcome::Failed(error.reason()),
                    };
                    let end = origin.elapsed();
                    server
                        .observer
                        .borrow_mut()
                        .finished(i, at, end, outcome, attempts.get());
                    in_flight.0.set(in_flight.0.get() - 1);
                    if in_flight.0.get() == 0 {
                        in_flight.1.notify_one();
                    }
                });
            }
            while in_flight.0.get() > 0 {
                in_flight.1.notified().await;
            }
            None
        };
        let ceiling = tokio::select! {
            biased;
            () = server.work.stop.notified() => Some(Ceiling::Events),
            done = tokio::time::timeout_at(drain_until, all_done) => done.ok().flatten(),
        };
        if let Some(ceiling) = ceiling {
            return Err(RunError::Stopped {
                policy: policy.name.clone(),
                ceiling,
                in_flight: in_flight.0.get(),
                events: server.work.events.get().min(limits.max_events),
                at: origin.elapsed(),
                requests: arrived.get(),
            });
        }
        let transitions = transitions.lock().map(|t| t.clone()).unwrap_or_default();
        Ok((server, transitions))
    })?;
    // The requests still running hold the server: dropping their tasks lets it go.
    let (server, transitions) = result;
    drop(local);
    let server = Rc::try_unwrap(server)
        .map_err(|_| RunError::Invalid("the run's tasks outlived it".to_owned()))?;
    Ok((server.observer.into_inner(), transitions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::scenario::{Behaviour, Latency, Phase};

    fn load(rate: f64, secs: u64, arrivals: Arrivals) -> Load {
        Load {
            rate,
            duration: Duration::from_secs(secs),
            arrivals,
            drain: Duration::from_secs(10),
        }
    }

    fn bare() -> Policy {
        Policy {
            name: "bare".to_owned(),
            retry: None,
            budget: None,
            breaker: None,
            attempt_timeout: None,
            timeout: None,
            fallback: false,
            wait_for_probe: false,
            settings: Vec::new(),
        }
    }

    fn healthy() -> Behaviour {
        Behaviour {
            latency: Latency::Fixed(Duration::from_millis(20)),
            error_rate: 0.0,
            retry_after: None,
            outage: None,
        }
    }

    #[test]
    fn arrivals_are_seeded_and_spaced() {
        let uniform = arrivals(&load(10.0, 2, Arrivals::Uniform), 1);
        assert_eq!(uniform.len(), 20);
        assert_eq!(uniform[1], Duration::from_millis(100));
        let poisson = arrivals(&load(100.0, 100, Arrivals::Poisson), 1);
        assert!(
            (9_500..10_500).contains(&poisson.len()),
            "{}",
            poisson.len()
        );
        assert!(poisson.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(poisson, arrivals(&load(100.0, 100, Arrivals::Poisson), 1));
        assert_ne!(poisson, arrivals(&load(100.0, 100, Arrivals::Poisson), 2));
    }

    #[test]
    fn a_bare_call_takes_the_dependency_latency_in_virtual_time() {
        let dependency = Dependency {
            baseline: healthy(),
            phases: Vec::new(),
            max_concurrency: None,
            max_queue: None,
        };
        let run = run(&load(50.0, 60, Arrivals::Uniform), &dependency, &bare(), 1).unwrap();
        assert_eq!(run.requests.len(), 3000);
        for r in &run.requests {
            assert_eq!(r.outcome, Outcome::Success);
            assert_eq!(r.calls, 1);
            assert_eq!(r.end.unwrap() - r.start, Duration::from_millis(20));
        }
        assert_eq!(run.calls.len(), 3000);
    }

    #[test]
    fn a_blackhole_without_timeouts_leaves_requests_unfinished_and_the_run_ends() {
        let secs = Duration::from_secs;
        let dependency = Dependency {
            baseline: healthy(),
            phases: vec![Phase {
                name: "hole".to_owned(),
                start: secs(1),
                end: secs(2),
                behaviour: Behaviour {
                    outage: Some(Outage::Blackhole),
                    ..healthy()
                },
            }],
            max_concurrency: None,
            max_queue: None,
        };
        let run = run(&load(10.0, 3, Arrivals::Uniform), &dependency, &bare(), 1).unwrap();
        let unfinished: Vec<_> = run
            .requests
            .iter()
            .filter(|r| r.outcome == Outcome::Unfinished)
            .map(|r| r.start)
            .collect();
        assert_eq!(unfinished.len(), 10);
        assert!(unfinished.iter().all(|&t| secs(1) <= t && t < secs(2)));
    }

    #[test]
    fn a_full_queue_answers_503_at_once() {
        let dependency = Dependency {
            baseline: Behaviour {
                latency: Latency::Fixed(Duration::from_secs(1)),
                ..healthy()
            },
            phases: Vec::new(),
            max_concurrency: Some(1),
            max_queue: Some(2),
        };
        // 10 arrivals in 1 s against one worker that takes 1 s: one served, two queued, the
        // rest refused.
        let run = run(&load(10.0, 1, Arrivals::Uniform), &dependency, &bare(), 1).unwrap();
        let ok = run
            .requests
            .iter()
            .filter(|r| r.outcome == Outcome::Success)
            .count();
        assert_eq!(ok, 3);
        let refused = run
            .requests
            .iter()
            .filter(|r| r.outcome == Outcome::Failed(StopReason::Exhausted))
            .count();
        assert_eq!(refused, 7, "{:?}", run.requests);
    }

    /// A policy that retries without end against a dependency that fails at once: a billion
    /// attempts, no backoff, no timeout.
    fn runaway() -> (Dependency, Policy) {
        let dependency = Dependency {
            baseline: Behaviour {
                latency: Latency::Fixed(Duration::ZERO),
                error_rate: 1.0,
                ..healthy()
            },
            phases: Vec::new(),
            max_concurrency: None,
            max_queue: None,
        };
        let retry = staunch::RetryConfig::new()
            .with_backoff(staunch::backoff::Backoff::constant(Duration::ZERO))
            .with_max_attempts(1_000_000_000);
        let policy = Policy {
            retry: Some(retry),
            ..bare()
        };
        (dependency, policy)
    }

    /// Counts what the run reports, and nothing else.
    #[derive(Debug, Default)]
    struct Count {
        arrivals: u64,
        calls: u64,
    }

    impl Observer for Count {
        fn arrived(&mut self, _: u64, _: Duration) {
            self.arrivals += 1;
        }
        fn called(&mut self, _: u64, _: Duration, _: Duration) {
            self.calls += 1;
        }
        fn finished(&mut self, _: u64, _: Duration, _: Duration, _: Outcome, _: u32) {}
    }

    #[test]
    fn a_run_past_its_ceiling_stops_there_even_in_zero_virtual_time() {
        let (dependency, policy) = runaway();
        let limits = Limits {
            max_events: 5_000,
            ..Limits::default()
        };
        let err = run_with(
            &load(10.0, 2, Arrivals::Uniform),
            &dependency,
            &policy,
            1,
            limits,
            Count::default(),
            &Progress::off(),
        )
        .unwrap_err();
        let RunError::Stopped {
            events,
            requests,
            at,
            ..
        } = &err
        else {
            panic!("not stopped: {err}");
        };
        assert_eq!(*events, 5_000);
        // Every attempt is at t = 0: the first request spends the whole ceiling.
        assert_eq!((*requests, *at), (1, Duration::ZERO));
        let message = err.to_string();
        assert!(
            message.contains("--max-events") && message.contains("bare"),
            "{message}"
        );
    }

    #[test]
    fn a_run_within_its_ceiling_counts_every_event() {
        let dependency = Dependency {
            baseline: healthy(),
            phases: Vec::new(),
            max_concurrency: None,
            max_queue: None,
        };
        // 20 arrivals and 20 calls: exactly 40 events fit a ceiling of 40.
        let (count, _) = run_with(
            &load(10.0, 2, Arrivals::Uniform),
            &dependency,
            &bare(),
            1,
            Limits {
                max_events: 40,
                ..Limits::default()
            },
            Count::default(),
            &Progress::off(),
        )
        .unwrap();
        assert_eq!((count.arrivals, count.calls), (20, 20));
        let err = run_with(
            &load(10.0, 2, Arrivals::Uniform),
            &dependency,
            &bare(),
            1,
            Limits {
                max_events: 39,
                ..Limits::default()
            },
            Count::default(),
            &Progress::off(),
        )
        .unwrap_err();
        assert!(matches!(err, RunError::Stopped { events: 39, .. }), "{err}");
    }

    #[test]
    fn requests_piling_up_in_flight_stop_the_run_at_the_ceiling() {
        let dependency = Dependency {
            baseline: Behaviour {
                outage: Some(Outage::Blackhole),
                ..healthy()
            },
            phases: Vec::new(),
            max_concurrency: None,
            max_queue: None,
        };
        let limits = Limits {
            max_in_flight: 25,
            ..Limits::default()
        };
        let err = run_with(
            &load(10.0, 60, Arrivals::Uniform),
            &dependency,
            &bare(),
            1,
            limits,
            Count::default(),
            &Progress::off(),
        )
        .unwrap_err();
        // The 26th arrival finds 25 requests that will never end.
        assert!(
            matches!(
                err,
                RunError::Stopped {
                    ceiling: Ceiling::InFlight,
                    in_flight: 25,
                    requests: 25,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("--max-in-flight"), "{err}");
        // Within the ceiling, the same run ends with every request unfinished.
        let (count, _) = run_with(
            &load(10.0, 2, Arrivals::Uniform),
            &dependency,
            &bare(),
            1,
            limits,
            Count::default(),
            &Progress::off(),
        )
        .unwrap();
        assert_eq!(count.arrivals, 20);
    }

    #[test]
    fn arrivals_are_drawn_lazily_and_match_the_list() {
        let load = load(100.0, 10, Arrivals::Poisson);
        assert!(ArrivalTimes::new(&load, 3).eq(arrivals(&load, 3)));
        let uniform = self::load(4.0, 1, Arrivals::Uniform);
        assert_eq!(ArrivalTimes::new(&uniform, 3).count(), 4);
    }
}
