//! The run: staunch's real [`Pipeline`] against a simulated dependency, in tokio's paused time.
//!
//! One current-thread runtime with a paused clock is the virtual clock: every timer in the
//! library and in the dependency is `tokio::time`, and when every task is waiting the runtime
//! jumps to the next timer, so minutes of traffic take milliseconds. One task per request on a
//! [`LocalSet`]; nothing reads the wall clock, and every random draw comes from a generator
//! seeded from the run's seed, so a run is a function of the scenario, the policy and the seed.

use std::cell::{Cell, RefCell};
use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use staunch::breaker::{CircuitBreaker, Reason, State};
use staunch::classify::Class;
use staunch::fallback::{Fallback, FallbackOn, FromFn};
use staunch::hedge::Hedge;
use staunch::limit::{AdaptiveThrottle, ConcurrencyLimit, RateLimit};
use staunch::retry::RetryBudget;
use staunch::{ConfigError, Error, Pipeline, Retry, StopReason};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::LocalSet;
use tokio::time::Instant;

use super::scenario::{Arrivals, Dependency, Load, Outage, Policy};

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
}

/// Everything a run observed; the report is computed from it.
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
    let end = load.duration.as_secs_f64();
    match load.arrivals {
        Arrivals::Uniform => {
            let n = (load.rate * end).floor() as u64;
            (0..n)
                .map(|i| Duration::from_secs_f64(i as f64 / load.rate))
                .collect()
        }
        Arrivals::Poisson => {
            let mut rng = fastrand::Rng::with_seed(mix(seed ^ 0xA441_7A15));
            let mut out = Vec::new();
            let mut t = 0.0;
            loop {
                t += -(1.0 - rng.f64()).ln() / load.rate;
                if t >= end {
                    return out;
                }
                out.push(Duration::from_secs_f64(t));
            }
        }
    }
}

/// The dependency while a run goes on.
struct Server {
    dependency: Dependency,
    origin: Instant,
    seed: u64,
    /// The dependency's workers, when `max_concurrency` is set: a fair (FIFO) semaphore.
    slots: Option<Arc<Semaphore>>,
    /// Calls waiting for a worker.
    queued: Rc<Cell<u32>>,
    calls: RefCell<Vec<Duration>>,
    calls_per_request: RefCell<Vec<u32>>,
}

impl Server {
    async fn call(&self, request: usize) -> Result<Answer, DepError> {
        let now = self.origin.elapsed();
        self.calls.borrow_mut().push(now);
        let attempt = {
            let mut per_request = self.calls_per_request.borrow_mut();
            per_request[request] += 1;
            per_request[request]
        };
        // The draw for (request, attempt) is the same whatever the policy: common random numbers
        // make a side-by-side comparison fair.
        let mut rng = fastrand::Rng::with_seed(mix(
            self.seed ^ mix((request as u64) << 16 ^ u64::from(attempt))
        ));
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

/// Runs `policy` against `dependency` under `load`, in virtual time.
///
/// # Errors
///
/// The policy is invalid (a file read by [`Scenario::from_file`](super::Scenario::from_file)
/// has been checked already), or the runtime could not be built.
pub fn run(
    load: &Load,
    dependency: &Dependency,
    policy: &Policy,
    seed: u64,
) -> Result<Run, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| format!("cannot start the simulation's runtime: {e}"))?;
    let local = LocalSet::new();
    let arrivals = arrivals(load, seed);
    local.block_on(&runtime, async {
        // The library's unseeded jitter generators fork this thread's generator: seeding it
        // fixes every backoff delay of the run.
        fastrand::seed(mix(seed ^ 0x0B5E_55ED));
        let origin = Instant::now();
        let transitions = Arc::new(Mutex::new(Vec::new()));
        let pipeline = build(policy, origin, &transitions).map_err(|e| e.to_string())?;
        let server = Rc::new(Server {
            dependency: dependency.clone(),
            origin,
            seed: mix(seed),
            slots: dependency
                .max_concurrency
                .map(|n| Arc::new(Semaphore::new(n as usize))),
            queued: Rc::new(Cell::new(0)),
            calls: RefCell::new(Vec::new()),
            calls_per_request: RefCell::new(vec![0; arrivals.len()]),
        });
        let requests: Rc<RefCell<Vec<Request>>> = Rc::new(RefCell::new(
            arrivals
                .iter()
                .map(|&start| Request {
                    start,
                    end: None,
                    outcome: Outcome::Unfinished,
                    calls: 0,
                    hedges: 0,
                })
                .collect(),
        ));
        let pipeline = Rc::new(pipeline);
        let drain_until = origin + load.duration + load.drain;
        let all_done = async {
            let mut handles = Vec::with_capacity(arrivals.len());
            for (i, &at) in arrivals.iter().enumerate() {
                tokio::time::sleep_until(origin + at).await;
                let (pipeline, server, requests) = (
                    Rc::clone(&pipeline),
                    Rc::clone(&server),
                    Rc::clone(&requests),
                );
                handles.push(tokio::task::spawn_local(async move {
                    let result = pipeline.call(|| server.call(i)).await;
                    let outcome = match result {
                        Ok(Answer::Fresh) => Outcome::Success,
                        Ok(Answer::Fallback(reason)) => Outcome::Fallback(reason),
                        Err(error) => Outcome::Failed(error.reason()),
                    };
                    let mut requests = requests.borrow_mut();
                    requests[i].end = Some(origin.elapsed());
                    requests[i].outcome = outcome;
                }));
            }
            for handle in handles {
                let _ = handle.await;
            }
        };
        let _ = tokio::time::timeout_at(drain_until, all_done).await;
        let mut requests = requests.borrow().clone();
        for (request, calls) in requests
            .iter_mut()
            .zip(server.calls_per_request.borrow().iter())
        {
            request.calls = *calls;
            if policy.hedge.is_some() {
                request.hedges = calls.saturating_sub(1);
            }
        }
        let transitions = transitions.lock().map(|t| t.clone()).unwrap_or_default();
        Ok(Run {
            requests,
            calls: server.calls.borrow().clone(),
            transitions,
            has_breaker: policy.breaker.is_some(),
        })
    })
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
            hedge: None,
            budget: None,
            breaker: None,
            attempt_timeout: None,
            timeout: None,
            fallback: false,
            wait_for_probe: false,
            throttle: None,
            rate_limit: None,
            limit: None,
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
}
