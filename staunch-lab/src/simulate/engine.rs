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
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use staunch::breaker::{CircuitBreaker, Reason, State};
use staunch::classify::Class;
use staunch::fallback::{Fallback, FallbackOn, FromFn};
use staunch::hedge::Hedge;
use staunch::limit::{AdaptiveThrottle, ConcurrencyLimit, RateLimit};
use staunch::retry::RetryBudget;
use staunch::{ConfigError, Deadline, Error, Pipeline, Retry, StopReason};
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::task::LocalSet;
use tokio::time::Instant;

use super::scenario::{Arrivals, Calls, Dependency, Load, Outage, Policy};
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
    /// How many of those were hedges: every call after the first, under a hedging policy.
    pub hedges: u32,
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
    /// The dependency whose breaker it is (an index into [`Calls::dependencies`]; 0 with one).
    pub dependency: usize,
    /// The client instance whose breaker it is (0 without a fleet).
    pub client: usize,
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

/// An attempt that reached a dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The request's number.
    pub request: u64,
    /// When the request arrived.
    pub arrival: Duration,
    /// When the attempt started.
    pub at: Duration,
    /// The dependency (an index into [`Calls::dependencies`]).
    pub dependency: usize,
    /// The attempt's number in the request's call to this dependency: 1 for the first, more
    /// for a retry or a hedge.
    pub attempt: u32,
    /// Whether it is a hedge: an attempt after the first under a hedging policy (which sends
    /// it while the first may still be running), not a retry.
    pub hedge: bool,
    /// The client instance that made it (0 without a fleet).
    pub client: usize,
}

/// A request's call to one dependency, through that dependency's policy, that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallEnd {
    /// The dependency.
    pub dependency: usize,
    /// When the request arrived.
    pub arrival: Duration,
    /// When the call started.
    pub start: Duration,
    /// When it ended.
    pub end: Duration,
    /// How: answered by the dependency, by the fallback, or failed.
    pub outcome: Outcome,
    /// The attempts it made.
    pub calls: u32,
}

/// What a run reports as it goes: the observer keeps the numbers it needs.
///
/// Calls come in the order of virtual time, which never goes back, and so do ends.
pub trait Observer {
    /// Request number `request` arrived at `at` (since the start of the run).
    fn arrived(&mut self, request: u64, at: Duration);
    /// An attempt reached a dependency.
    fn called(&mut self, call: &Call);
    /// A request's call to `dependency` started (the request arrived at `arrival`).
    fn call_started(&mut self, dependency: usize, arrival: Duration) {
        let _ = (dependency, arrival);
    }
    /// A request's call to a dependency ended. Calls still running when the run ends are never
    /// reported.
    fn call_ended(&mut self, end: &CallEnd) {
        let _ = end;
    }
    /// A request ended at `end` with `outcome`, after `calls` calls to its dependencies.
    /// Requests still running when the run ends are never reported: they are the unfinished
    /// ones.
    fn finished(
        &mut self,
        request: u64,
        arrival: Duration,
        end: Duration,
        outcome: Outcome,
        calls: u32,
    );
}

/// What a policy runs against: the load, the dependencies a request calls, and how many client
/// instances share them.
#[derive(Debug, Clone, Copy)]
pub struct Scene<'a> {
    /// The offered load, spread over the clients in turn.
    pub load: &'a Load,
    /// The dependencies and the order of a request's calls.
    pub calls: &'a Calls,
    /// Client instances, each with its own breakers, budgets and limits (at least 1).
    pub clients: usize,
}

/// The most events (arrivals and dependency calls) one policy's run may take by default: ten to
/// thirty seconds of work on a laptop.
pub const DEFAULT_MAX_EVENTS: u64 = 10_000_000;

/// The most requests one run may hold in flight by default: each takes about 3 KB while it
/// runs (3.5 KB with several dependencies), so this is 300 to 350 MB.
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

/// What every part of a run shares: the clock's origin, the work done and the observer.
struct Shared<O> {
    origin: Instant,
    work: Work,
    observer: RefCell<O>,
}

/// A dependency while a run goes on.
struct Server {
    dependency: Dependency,
    /// Its index in [`Calls::dependencies`].
    index: usize,
    /// Whether its policy hedges: its attempts after the first are hedges.
    hedged: bool,
    seed: u64,
    /// The dependency's workers, when `max_concurrency` is set: a fair (FIFO) semaphore.
    slots: Option<Arc<Semaphore>>,
    /// Calls waiting for a worker.
    queued: Rc<Cell<u32>>,
}

impl Server {
    /// Call `attempt` (the count so far, kept by the request) of `request`, which arrived at
    /// `arrival`, from `client`.
    async fn call<O: Observer>(
        &self,
        shared: &Shared<O>,
        request: u64,
        arrival: Duration,
        client: usize,
        attempt: &Cell<u32>,
    ) -> Result<Answer, DepError> {
        if !shared.work.take() {
            // Past the ceiling: the run is stopping; this call never ends.
            std::future::pending::<()>().await;
        }
        let now = shared.origin.elapsed();
        attempt.set(attempt.get() + 1);
        let attempt = attempt.get();
        shared.observer.borrow_mut().called(&Call {
            request,
            arrival,
            at: now,
            dependency: self.index,
            attempt,
            hedge: self.hedged && attempt > 1,
            client,
        });
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
    let budget = policy.budget.map(RetryBudget::new).transpose()?;
    if let Some(config) = policy.retry {
        let mut retry = Retry::new(config)?.classify(classify as Classifier);
        if let Some(budget) = budget.clone() {
            retry = retry.with_budget(budget);
        }
        pipeline = pipeline.retry(retry);
    }
    if let Some(config) = policy.hedge {
        let mut hedge = Hedge::new(config)?.classify(classify as Classifier);
        if let Some(budget) = budget {
            hedge = hedge.with_budget(budget);
        }
        pipeline = pipeline.hedge(hedge);
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
                        dependency: 0,
                        client: 0,
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
    if let Some(config) = policy.throttle {
        pipeline = pipeline.throttle(AdaptiveThrottle::new(config)?);
    }
    if let Some(config) = policy.rate_limit {
        pipeline = pipeline.rate_limit(RateLimit::new(config)?);
    }
    if let Some(config) = policy.limit {
        pipeline = pipeline.limit(
            ConcurrencyLimit::builder(config)
                .name("dependency")
                .build()?,
        );
    }
    let on = if policy.fallback {
        FallbackOn::DEFAULT
    } else {
        FallbackOn::NONE
    };
    Ok(pipeline.with_fallback(Fallback::from_fn(fallback_answer as OnFailure).on(on)))
}

/// Runs `policy` against `dependency` under `load`, in virtual time, and returns every request
/// (see [`Run`]); with the default [`Limits`], one client.
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
    let calls = Calls::one(dependency.clone());
    let scene = Scene {
        load,
        calls: &calls,
        clients: 1,
    };
    let (trace, transitions) = run_with(
        scene,
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
        .zip(trace.hedges_per_request)
        .map(|(((start, end), calls), hedges)| {
            end.unwrap_or(Request {
                start,
                end: None,
                outcome: Outcome::Unfinished,
                calls,
                hedges,
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
    hedges_per_request: Vec<u32>,
}

impl Observer for Trace {
    fn arrived(&mut self, _request: u64, at: Duration) {
        self.requests.push((at, None));
        self.calls_per_request.push(0);
        self.hedges_per_request.push(0);
    }

    fn called(&mut self, call: &Call) {
        self.calls.push(call.at);
        let Ok(i) = usize::try_from(call.request) else {
            return;
        };
        if let Some(calls) = self.calls_per_request.get_mut(i) {
            *calls += 1;
        }
        if call.hedge
            && let Some(hedges) = self.hedges_per_request.get_mut(i)
        {
            *hedges += 1;
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
        let Ok(i) = usize::try_from(request) else {
            return;
        };
        let hedges = self.hedges_per_request.get(i).copied().unwrap_or(0);
        if let Some(slot) = self.requests.get_mut(i) {
            slot.1 = Some(Request {
                start: arrival,
                end: Some(end),
                outcome,
                calls,
                hedges,
            });
        }
    }
}

/// The policy of each dependency of `calls`, and the request's own deadline, if any.
///
/// With one unnamed dependency the policy is its own, deadline included (as it always was);
/// with named dependencies each gets its `[policy.NAME]` (a bare call without one), or, for a
/// policy that names none, the policy itself; the policy's `timeout` is then the request's
/// deadline over every call.
fn policies(calls: &Calls, policy: &Policy) -> (Vec<Policy>, Option<Duration>) {
    if !calls.named {
        return (vec![policy.clone()], None);
    }
    let bare = Policy::bare("");
    let each = calls
        .dependencies
        .iter()
        .map(|(name, _)| {
            if policy.dependencies.is_empty() {
                return Policy {
                    timeout: None,
                    ..policy.clone()
                };
            }
            policy
                .dependencies
                .iter()
                .find(|(n, _)| n == name)
                .map_or_else(|| bare.clone(), |(_, p)| p.clone())
        })
        .collect();
    (each, policy.timeout)
}

/// Whether any dependency's policy (of `policy` on `calls`) has a breaker.
pub fn has_breaker(calls: &Calls, policy: &Policy) -> bool {
    policies_of(calls, policy)
        .iter()
        .any(|p| p.breaker.is_some())
}

/// The policy each dependency of `calls` runs under `policy`, by index.
pub fn policies_of(calls: &Calls, policy: &Policy) -> Vec<Policy> {
    policies(calls, policy).0
}

/// Awaits every future, polling them in turn: a request's parallel calls.
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// The outcome of a request from those of its calls so far: a failure wins, then a fallback,
/// each with the first reason.
fn combine(so_far: Outcome, call: Outcome) -> Outcome {
    match (so_far, call) {
        (Outcome::Failed(_), _) => so_far,
        (_, Outcome::Failed(_)) => call,
        (Outcome::Fallback(_), _) => so_far,
        (_, Outcome::Fallback(_)) => call,
        _ => so_far,
    }
}

/// Runs `policy` in `scene`, in virtual time, telling `observer` what happens; returns the
/// observer and the breakers' state changes (of every client and dependency, in time order).
/// `progress` counts arrivals.
///
/// # Errors
///
/// [`RunError::Invalid`]: the policy is invalid (a file read by
/// [`Scenario::from_file`](super::Scenario::from_file) has been checked already), or the runtime
/// could not be built. [`RunError::Stopped`]: the run reached one of `limits`.
pub fn run_with<O: Observer + 'static>(
    scene: Scene<'_>,
    policy: &Policy,
    seed: u64,
    limits: Limits,
    observer: O,
    progress: &Progress,
) -> Result<(O, Vec<Transition>), RunError> {
    let Scene {
        load,
        calls,
        clients,
    } = scene;
    let clients = clients.max(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| RunError::Invalid(format!("cannot start the simulation's runtime: {e}")))?;
    let local = LocalSet::new();
    let (each, deadline) = policies(calls, policy);
    let result = local.block_on(&runtime, async {
        // The library's unseeded jitter generators fork this thread's generator: seeding it
        // fixes every backoff delay of the run.
        fastrand::seed(mix(seed ^ 0x0B5E_55ED));
        let origin = Instant::now();
        // A pipeline per client and dependency, each with its own breaker, budget and log.
        let mut logs = Vec::new();
        let mut pipelines = Vec::with_capacity(clients);
        for client in 0..clients {
            let mut own = Vec::with_capacity(each.len());
            for (dependency, policy) in each.iter().enumerate() {
                let log = Arc::new(Mutex::new(Vec::new()));
                own.push(
                    build(policy, origin, &log).map_err(|e| RunError::Invalid(e.to_string()))?,
                );
                logs.push((dependency, client, log));
            }
            pipelines.push(own);
        }
        let pipelines = Rc::new(pipelines);
        let servers: Rc<Vec<Server>> = Rc::new(
            calls
                .dependencies
                .iter()
                .enumerate()
                .map(|(index, (_, dependency))| Server {
                    dependency: dependency.clone(),
                    index,
                    hedged: each[index].hedge.is_some(),
                    // The first dependency's draws are those of a one-dependency run.
                    seed: if index == 0 {
                        mix(seed)
                    } else {
                        mix(seed ^ mix(index as u64))
                    },
                    slots: dependency
                        .max_concurrency
                        .map(|n| Arc::new(Semaphore::new(n as usize))),
                    queued: Rc::new(Cell::new(0)),
                })
                .collect(),
        );
        let shared = Rc::new(Shared {
            origin,
            work: Work {
                events: Cell::new(0),
                max: limits.max_events,
                stop: Notify::new(),
            },
            observer: RefCell::new(observer),
        });
        let steps = Rc::new(calls.steps.clone());
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
                if !shared.work.take() {
                    std::future::pending::<()>().await;
                }
                let i = i as u64;
                arrived.set(i + 1);
                progress.set(i + 1);
                shared.observer.borrow_mut().arrived(i, at);
                in_flight.0.set(in_flight.0.get() + 1);
                let (pipelines, servers, shared, steps, in_flight) = (
                    Rc::clone(&pipelines),
                    Rc::clone(&servers),
                    Rc::clone(&shared),
                    Rc::clone(&steps),
                    Rc::clone(&in_flight),
                );
                // The load balancer: requests go to the clients in turn.
                let client = (i % clients as u64) as usize;
                tokio::task::spawn_local(async move {
                    let call = |d: usize| {
                        let (pipeline, server, shared) =
                            (&pipelines[client][d], &servers[d], &shared);
                        async move {
                            let attempts = Cell::new(0_u32);
                            shared.observer.borrow_mut().call_started(d, at);
                            let start = shared.origin.elapsed();
                            let result = pipeline
                                .call(|| server.call(shared, i, at, client, &attempts))
                                .await;
                            let outcome = match result {
                                Ok(Answer::Fresh) => Outcome::Success,
                                Ok(Answer::Fallback(reason)) => Outcome::Fallback(reason),
                                Err(error) => Outcome::Failed(error.reason()),
                            };
                            shared.observer.borrow_mut().call_ended(&CallEnd {
                                dependency: d,
                                arrival: at,
                                start,
                                end: shared.origin.elapsed(),
                                outcome,
                                calls: attempts.get(),
                            });
                            (outcome, attempts.get())
                        }
                    };
                    let request = async {
                        let (mut outcome, mut total) = (Outcome::Success, 0);
                        for step in steps.iter() {
                            let results = match step.as_slice() {
                                [d] => vec![call(*d).await],
                                many => join_all(many.iter().map(|&d| call(d))).await,
                            };
                            for (result, attempts) in results {
                                outcome = combine(outcome, result);
                                total += attempts;
                            }
                            if matches!(outcome, Outcome::Failed(_)) {
                                break;
                            }
                        }
                        (outcome, total)
                    };
                    let (outcome, total) = match deadline {
                        Some(timeout) => Deadline::after(timeout).scope(request).await,
                        None => request.await,
                    };
                    let end = shared.origin.elapsed();
                    shared
                        .observer
                        .borrow_mut()
                        .finished(i, at, end, outcome, total);
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
            () = shared.work.stop.notified() => Some(Ceiling::Events),
            done = tokio::time::timeout_at(drain_until, all_done) => done.ok().flatten(),
        };
        if let Some(ceiling) = ceiling {
            return Err(RunError::Stopped {
                policy: policy.name.clone(),
                ceiling,
                in_flight: in_flight.0.get(),
                events: shared.work.events.get().min(limits.max_events),
                at: origin.elapsed(),
                requests: arrived.get(),
            });
        }
        let mut transitions: Vec<Transition> = logs
            .iter()
            .flat_map(|(dependency, client, log)| {
                let log = log.lock().map(|t| t.clone()).unwrap_or_default();
                log.into_iter().map(move |t| Transition {
                    dependency: *dependency,
                    client: *client,
                    ..t
                })
            })
            .collect();
        transitions.sort_by_key(|t| (t.at, t.client, t.dependency));
        Ok((shared, transitions))
    })?;
    // The requests still running hold the shared state: dropping their tasks lets it go.
    let (shared, transitions) = result;
    drop(local);
    let shared = Rc::try_unwrap(shared)
        .map_err(|_| RunError::Invalid("the run's tasks outlived it".to_owned()))?;
    Ok((shared.observer.into_inner(), transitions))
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
        Policy::bare("bare")
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

    #[test]
    fn a_concurrency_limit_refuses_locally_and_never_reaches_the_dependency() {
        let dependency = Dependency {
            baseline: Behaviour {
                latency: Latency::Fixed(Duration::from_secs(1)),
                ..healthy()
            },
            phases: Vec::new(),
            max_concurrency: None,
            max_queue: None,
        };
        // 10 arrivals in 1 s, each call taking 1 s, two slots: two answered, eight refused
        // by the client itself, none of which reached the dependency.
        let policy = Policy {
            limit: Some(staunch::limit::LimitConfig::fixed(2)),
            ..bare()
        };
        let run = run(&load(10.0, 1, Arrivals::Uniform), &dependency, &policy, 1).unwrap();
        let ok = run
            .requests
            .iter()
            .filter(|r| r.outcome == Outcome::Success)
            .count();
        assert_eq!(ok, 2);
        let refused: Vec<_> = run
            .requests
            .iter()
            .filter(|r| {
                r.outcome
                    == Outcome::Failed(StopReason::Refused(staunch::limit::Refusal::LimitFull))
            })
            .collect();
        assert_eq!(refused.len(), 8, "{:?}", run.requests);
        assert!(
            refused.iter().all(|r| r.calls == 0),
            "refused before any call"
        );
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

    /// Runs with a [`Count`] observer, one client.
    fn counted(
        load: &Load,
        dependency: &Dependency,
        policy: &Policy,
        limits: Limits,
    ) -> Result<(Count, Vec<Transition>), RunError> {
        let calls = Calls::one(dependency.clone());
        let scene = Scene {
            load,
            calls: &calls,
            clients: 1,
        };
        run_with(scene, policy, 1, limits, Count::default(), &Progress::off())
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
        fn called(&mut self, _: &Call) {
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
        let err = counted(
            &load(10.0, 2, Arrivals::Uniform),
            &dependency,
            &policy,
            limits,
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
        let (count, _) = counted(
            &load(10.0, 2, Arrivals::Uniform),
            &dependency,
            &bare(),
            Limits {
                max_events: 40,
                ..Limits::default()
            },
        )
        .unwrap();
        assert_eq!((count.arrivals, count.calls), (20, 20));
        let err = counted(
            &load(10.0, 2, Arrivals::Uniform),
            &dependency,
            &bare(),
            Limits {
                max_events: 39,
                ..Limits::default()
            },
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
        let err = counted(
            &load(10.0, 60, Arrivals::Uniform),
            &dependency,
            &bare(),
            limits,
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
        let (count, _) = counted(
            &load(10.0, 2, Arrivals::Uniform),
            &dependency,
            &bare(),
            limits,
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

    fn fixed(ms: u64) -> Dependency {
        Dependency {
            baseline: Behaviour {
                latency: Latency::Fixed(Duration::from_millis(ms)),
                ..healthy()
            },
            phases: Vec::new(),
            max_concurrency: None,
            max_queue: None,
        }
    }

    /// Every request of a run of `policy` on `calls`, with `clients` clients.
    fn traced(calls: &Calls, policy: &Policy, clients: usize) -> Vec<Request> {
        let scene = Scene {
            load: &load(10.0, 1, Arrivals::Uniform),
            calls,
            clients,
        };
        let (trace, _) = run_with(
            scene,
            policy,
            1,
            Limits::default(),
            Trace::default(),
            &Progress::off(),
        )
        .unwrap();
        trace.requests.into_iter().filter_map(|(_, r)| r).collect()
    }

    fn named(steps: Vec<Vec<usize>>, dependencies: Vec<Dependency>) -> Calls {
        Calls {
            dependencies: dependencies
                .into_iter()
                .enumerate()
                .map(|(i, d)| (format!("d{i}"), d))
                .collect(),
            steps,
            named: true,
        }
    }

    #[test]
    fn a_sequence_adds_its_calls_and_a_parallel_step_waits_for_the_slowest() {
        let ms = Duration::from_millis;
        let sequence = named(vec![vec![0], vec![1]], vec![fixed(30), fixed(50)]);
        let parallel = named(vec![vec![0, 1]], vec![fixed(30), fixed(50)]);
        for (calls, took) in [(sequence, ms(80)), (parallel, ms(50))] {
            let requests = traced(&calls, &bare(), 1);
            assert_eq!(requests.len(), 10);
            for r in requests {
                assert_eq!(r.outcome, Outcome::Success);
                assert_eq!(r.calls, 2);
                assert_eq!(r.end.unwrap() - r.start, took, "{:?}", calls.steps);
            }
        }
    }

    #[test]
    fn a_failed_call_ends_the_sequence_and_a_fallback_does_not() {
        let down = Dependency {
            baseline: Behaviour {
                outage: Some(Outage::Refused),
                ..healthy()
            },
            ..fixed(10)
        };
        let calls = named(vec![vec![0], vec![1]], vec![down, fixed(20)]);
        // No fallback: the request fails at the first call and never calls the second.
        for r in traced(&calls, &bare(), 1) {
            assert!(matches!(r.outcome, Outcome::Failed(_)), "{r:?}");
            assert_eq!(r.calls, 1);
        }
        // The first dependency's own fallback answers, and the request goes on.
        let policy = Policy {
            dependencies: vec![
                (
                    "d0".to_owned(),
                    Policy {
                        fallback: true,
                        ..bare()
                    },
                ),
                ("d1".to_owned(), bare()),
            ],
            ..bare()
        };
        for r in traced(&calls, &policy, 1) {
            assert!(matches!(r.outcome, Outcome::Fallback(_)), "{r:?}");
            assert_eq!(r.calls, 2);
            assert_eq!(
                r.end.unwrap() - r.start,
                REFUSED_AFTER + Duration::from_millis(20)
            );
        }
    }

    #[test]
    fn the_request_deadline_covers_every_call() {
        let calls = named(vec![vec![0], vec![1]], vec![fixed(300), fixed(300)]);
        let policy = Policy {
            timeout: Some(Duration::from_millis(450)),
            ..bare()
        };
        for r in traced(&calls, &policy, 1) {
            // 300 ms for the first call, then the second's attempt is clipped to the request's
            // deadline (the library reports the clipped attempt as its timeout).
            assert_eq!(r.outcome, Outcome::Failed(StopReason::Timeout), "{r:?}");
            assert_eq!(r.end.unwrap() - r.start, Duration::from_millis(450));
        }
    }

    #[test]
    fn each_client_of_a_fleet_has_its_own_breaker_and_its_turn_of_the_load() {
        let down = Dependency {
            baseline: Behaviour {
                outage: Some(Outage::Refused),
                ..healthy()
            },
            ..fixed(10)
        };
        let policy = Policy {
            breaker: Some(staunch::breaker::BreakerConfig::consecutive_failures(2)),
            fallback: true,
            ..bare()
        };
        let calls = Calls::one(down);
        let ten = load(10.0, 1, Arrivals::Uniform);
        let scene = |clients| Scene {
            load: &ten,
            calls: &calls,
            clients,
        };
        let run = |clients| {
            run_with(
                scene(clients),
                &policy,
                1,
                Limits::default(),
                Count::default(),
                &Progress::off(),
            )
            .unwrap()
        };
        // One client: two failures trip its breaker, and the other eight requests get the
        // fallback without a call.
        let (count, transitions) = run(1);
        assert_eq!(count.calls, 2);
        assert_eq!(transitions.len(), 1);
        // Five clients, two requests each in turn: every breaker trips on its own two calls.
        let (count, transitions) = run(5);
        assert_eq!(count.calls, 10);
        let mut tripped: Vec<usize> = transitions
            .iter()
            .filter(|t| t.to == State::Open)
            .map(|t| t.client)
            .collect();
        tripped.sort_unstable();
        assert_eq!(tripped, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn only_a_hedging_dependency_sends_hedges_and_each_is_counted_once() {
        use staunch::hedge::{HedgeConfig, HedgeDelay};
        let ms = Duration::from_millis;
        // Both dependencies take 100 ms: d0 hedges after 20 ms (its second attempt is a
        // hedge), d1 cuts its attempt at 50 ms and retries (its second attempt is a retry).
        let calls = named(vec![vec![0, 1]], vec![fixed(100), fixed(100)]);
        let policy = Policy {
            dependencies: vec![
                (
                    "d0".to_owned(),
                    Policy {
                        hedge: Some(HedgeConfig::new(HedgeDelay::fixed(ms(20)))),
                        ..bare()
                    },
                ),
                (
                    "d1".to_owned(),
                    Policy {
                        retry: Some(staunch::RetryConfig::new().with_max_attempts(2)),
                        attempt_timeout: Some(staunch::deadline::AttemptTimeout::fixed(ms(50))),
                        fallback: true,
                        ..bare()
                    },
                ),
            ],
            ..bare()
        };
        for clients in [1, 3] {
            let requests = traced(&calls, &policy, clients);
            assert_eq!(requests.len(), 10);
            for r in requests {
                assert_eq!((r.calls, r.hedges), (4, 1), "{clients} clients: {r:?}");
            }
        }
        // A one-dependency run counts them too.
        let hedging = Policy {
            hedge: Some(HedgeConfig::new(HedgeDelay::fixed(ms(20)))),
            ..bare()
        };
        let run = run(&load(10.0, 1, Arrivals::Uniform), &fixed(100), &hedging, 1).unwrap();
        assert!(run.requests.iter().all(|r| (r.calls, r.hedges) == (2, 1)));
    }
}
