//! The `pricing` and `inventory` dependencies: HTTP servers whose handler is healthy and
//! instant, with the faults of the schedule injected by `staunch::chaos`, one policy per phase;
//! each logs every call it receives.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};
use staunch::ConfigError;
use staunch::chaos::{Chaos, ChaosConfig, Injection};
use tokio::time::Instant;

use super::Build;
use super::net::{self, Answer, Body, DropConnection};
use super::schedule::{Fault, Schedule};

/// One of the two dependencies of checkout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dependency {
    /// The pricing service: checkout can do without it (a fallback price).
    Pricing,
    /// The inventory service: checkout fails without it.
    Inventory,
}

impl Dependency {
    /// Both, in report order.
    pub const ALL: [Self; 2] = [Self::Pricing, Self::Inventory];

    /// `pricing` or `inventory`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pricing => "pricing",
            Self::Inventory => "inventory",
        }
    }

    const fn salt(self) -> u64 {
        match self {
            Self::Pricing => 0x7072_6963_696e_6700,
            Self::Inventory => 0x696e_7665_6e74_6f72,
        }
    }
}

/// What a dependency did with one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// Answered 200.
    Ok,
    /// Answered 503.
    Unavailable,
    /// Refused a retry that came back before the Retry-After it was given (503 again).
    TooEarly,
    /// Closed the connection without an answer.
    Dropped,
}

/// One call received by a dependency.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    /// When it arrived, since the start of the run.
    pub at: Duration,
    /// Which build of checkout made it.
    pub build: Build,
    /// The number of the checkout request it serves.
    pub id: u64,
    /// The phase it arrived in (the request may have been sent in an earlier one).
    pub phase: usize,
    /// What the dependency did.
    pub outcome: CallOutcome,
}

/// What a phase's chaos policy injects in place of the dependency's answer, as the handler's
/// error: the handler turns it into the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Close the connection without an answer.
    Drop,
    /// Answer 503 with a Retry-After hint, and refuse the request's retries until it passes.
    Throttle,
}

/// The makers of a phase's policy: plain functions, so that every phase's policy has one type.
type MakeRefusal = fn() -> Refusal;
type MakeAnswer = fn() -> Response<Body>;

/// The chaos policy that turns the healthy, instant handler into a dependency with `fault`:
///
/// | fault | error | delay | result |
/// |---|---|---|---|
/// | healthy, slow | – | 100%, the latency range | – |
/// | down | `drop_share`: connection dropped | – | 100% of the rest: 503 |
/// | flaky | `error_rate`: 503 with Retry-After | 100%, the latency range | – |
///
/// An injected error is fast (it is drawn first, and nothing else is drawn after it), so a flaky
/// dependency's 503 comes at once and only its successful answers are slow.
pub(crate) fn chaos_config(fault: &Fault) -> ChaosConfig<MakeRefusal, MakeAnswer> {
    let none = ChaosConfig::new()
        .with_error(0.0, (|| Refusal::Drop) as MakeRefusal)
        .with_result(0.0, down as MakeAnswer);
    let latency = |(min, max): (u64, u64)| (Duration::from_millis(min), Duration::from_millis(max));
    match *fault {
        Fault::Healthy { latency_ms } | Fault::Slow { latency_ms } => {
            let (min, max) = latency(latency_ms);
            none.with_delay_between(1.0, min, max)
        }
        Fault::Down { drop_share } => none
            .with_error(drop_share, (|| Refusal::Drop) as MakeRefusal)
            .with_result(1.0, down as MakeAnswer),
        Fault::Flaky {
            error_rate,
            latency_ms,
            ..
        } => {
            let (min, max) = latency(latency_ms);
            none.with_error(error_rate, (|| Refusal::Throttle) as MakeRefusal)
                .with_delay_between(1.0, min, max)
        }
    }
}

/// What [`chaos_config`] injects for `fault`, in words: `error 50% (connection dropped), result
/// 100% of the rest (503)`.
pub(crate) fn describe_chaos(fault: &Fault) -> String {
    let config = chaos_config(fault);
    let pct = |rate: f64| format!("{:.0}%", rate * 100.0);
    let mut parts = Vec::new();
    if config.error_rate() > 0.0 {
        let what = match fault {
            Fault::Down { .. } => "connection dropped",
            _ => "503 with Retry-After",
        };
        parts.push(format!("error {} ({what})", pct(config.error_rate())));
    }
    // The later kinds draw only for the calls the error left alone.
    let rest = if config.error_rate() > 0.0 {
        " of the rest"
    } else {
        ""
    };
    if config.delay_rate() > 0.0 {
        let (min, max) = config.delay_range();
        parts.push(format!(
            "delay {}{rest} ({}-{} ms)",
            pct(config.delay_rate()),
            min.as_millis(),
            max.as_millis()
        ));
    }
    if config.result_rate() > 0.0 {
        parts.push(format!("result {}{rest} (503)", pct(config.result_rate())));
    }
    if parts.is_empty() {
        parts.push("nothing".to_owned());
    }
    parts.join(", ")
}

/// Checks that `fault` makes a valid chaos policy.
pub(crate) fn validate(fault: &Fault) -> Result<(), ConfigError> {
    chaos_config(fault).validate()
}

/// The answer of a hard-down dependency's substitute.
fn down() -> Response<Body> {
    net::response(StatusCode::SERVICE_UNAVAILABLE, "down", &[])
}

/// One phase's policy, and the fault it plays (which says what a refusal becomes).
struct PhaseChaos {
    chaos: Chaos<MakeRefusal, MakeAnswer>,
    fault: Fault,
}

/// A running dependency: its shared state.
pub(crate) struct Server {
    dependency: Dependency,
    schedule: Arc<Schedule>,
    start: Instant,
    seed: u64,
    /// One policy per phase of the schedule.
    phases: Vec<PhaseChaos>,
    calls: Mutex<Vec<Call>>,
    /// Flaky mode: per (build, request), when a retry is welcome again.
    not_before: Mutex<HashMap<(Build, u64), Instant>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("dependency", &self.dependency)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A dependency following `schedule`, every random decision drawn from `seed`.
    ///
    /// # Errors
    ///
    /// A phase's fault makes no valid chaos policy (a share outside `[0, 1]`, say).
    pub(crate) fn new(
        dependency: Dependency,
        schedule: Arc<Schedule>,
        start: Instant,
        seed: u64,
    ) -> Result<Arc<Self>, ConfigError> {
        let phases = schedule
            .phases()
            .iter()
            .enumerate()
            .map(|(i, phase)| {
                let fault = match dependency {
                    Dependency::Pricing => phase.pricing,
                    Dependency::Inventory => phase.inventory,
                };
                // Its own seed per dependency and phase; keyed by request and attempt below.
                let seed = mix(seed ^ dependency.salt(), i as u64, 0);
                let chaos = Chaos::new(
                    chaos_config(&fault)
                        .with_seed(seed)
                        .with_name(dependency.as_str()),
                )?;
                Ok(PhaseChaos { chaos, fault })
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(Arc::new(Self {
            dependency,
            schedule,
            start,
            seed,
            phases,
            calls: Mutex::new(Vec::new()),
            not_before: Mutex::new(HashMap::new()),
        }))
    }

    /// Every call received so far, in arrival order.
    pub(crate) fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    /// Handles one call, with the request's `headers` (its body is empty).
    pub(crate) async fn handle(self: Arc<Self>, headers: HeaderMap) -> Answer {
        let now = Instant::now();
        let at = now.saturating_duration_since(self.start);
        let phase = self.schedule.phase_at(at);
        let headers = &headers;
        // Calls without the demo's headers (none are made) count as the naive build's.
        let build = net::header_build(headers).unwrap_or(Build::Naive);
        let id = net::header_u64(headers, net::REQUEST_ID).unwrap_or(0);
        let attempt = net::header_u64(headers, net::ATTEMPT).unwrap_or(1);
        let record = |outcome| {
            lock(&self.calls).push(Call {
                at,
                build,
                id,
                phase,
                outcome,
            });
        };
        let PhaseChaos { chaos, fault } = &self.phases[phase];
        let key = (build, id);
        if let Fault::Flaky { .. } = fault {
            // A rate limiter remembers what it told each request.
            let waiting = lock(&self.not_before)
                .get(&key)
                .map(|not_before| not_before.saturating_duration_since(now))
                .filter(|wait| !wait.is_zero());
            if let Some(wait) = waiting {
                record(CallOutcome::TooEarly);
                return unavailable(wait);
            }
        }
        // Every decision comes from the seed, the request and the attempt, not the build nor
        // the order of arrival: both builds meet the same latencies and failures for the same
        // request.
        let injection = chaos.decide_keyed((id << 32) | (attempt & 0xffff_ffff));
        record(match injection {
            Injection::Error if matches!(fault, Fault::Down { .. }) => CallOutcome::Dropped,
            Injection::Error | Injection::Result | Injection::DelayedResult(_) => {
                CallOutcome::Unavailable
            }
            _ => CallOutcome::Ok,
        });
        let answer = chaos
            .apply(injection, || async { Ok::<_, Refusal>(self.ok()) })
            .await;
        match answer {
            Ok(response) => Ok(response),
            Err(Refusal::Drop) => Err(DropConnection),
            Err(Refusal::Throttle) => {
                // Only a flaky phase throttles; its hint is drawn from the request too.
                let Fault::Flaky { retry_after_ms, .. } = *fault else {
                    return unavailable(Duration::from_secs(1));
                };
                let mut rng =
                    fastrand::Rng::with_seed(mix(self.seed ^ self.dependency.salt(), id, attempt));
                let wait = draw(&mut rng, retry_after_ms);
                lock(&self.not_before).insert(key, now + wait);
                unavailable(wait)
            }
        }
    }

    fn ok(&self) -> Response<Body> {
        let body = match self.dependency {
            Dependency::Pricing => "12.50",
            Dependency::Inventory => "3",
        };
        net::response(StatusCode::OK, body, &[])
    }
}

/// A 503 asking to come back after `wait`: `Retry-After` in whole seconds (rounded up, as the
/// header allows no less) and the precise `retry-after-ms`.
fn unavailable(wait: Duration) -> Answer {
    let millis = wait.as_millis().max(1);
    let seconds = millis.div_ceil(1000);
    net::respond(
        StatusCode::SERVICE_UNAVAILABLE,
        "try again later",
        &[
            ("retry-after", seconds.to_string()),
            (net::RETRY_AFTER_MS, millis.to_string()),
        ],
    )
}

/// A duration drawn uniformly from `[min, max]` milliseconds.
fn draw(rng: &mut fastrand::Rng, (min, max): (u64, u64)) -> Duration {
    Duration::from_millis(rng.u64(min..=max))
}

/// A well-mixed seed from three numbers (SplitMix64's finaliser on each step).
fn mix(seed: u64, id: u64, attempt: u64) -> u64 {
    let mut x = seed;
    for part in [id, attempt] {
        x = (x ^ part).wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
    }
    x
}

/// Locks `mutex`, ignoring poisoning: the data are logs, and a panicked handler leaves them
/// consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::schedule::Phase;
    use hyper::header::HeaderValue;

    fn schedule(pricing: Fault) -> Arc<Schedule> {
        let phase = Phase {
            name: "only".to_owned(),
            duration: Duration::from_secs(60),
            pricing,
            inventory: Fault::HEALTHY,
        };
        Arc::new(Schedule::new(vec![phase]).unwrap())
    }

    fn headers(build: Build, id: u64, attempt: u32) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(net::BUILD, HeaderValue::from_static(build.as_str()));
        h.insert(net::REQUEST_ID, id.into());
        h.insert(net::ATTEMPT, attempt.into());
        h
    }

    fn retry_after_ms(answer: &Answer) -> Option<u64> {
        net::header_u64(answer.as_ref().ok()?.headers(), net::RETRY_AFTER_MS)
    }

    #[tokio::test(start_paused = true)]
    async fn a_flaky_dependency_refuses_a_retry_before_its_retry_after() {
        let flaky = Fault::Flaky {
            error_rate: 1.0,
            retry_after_ms: (300, 300),
            latency_ms: (5, 5),
        };
        let server = Server::new(Dependency::Pricing, schedule(flaky), Instant::now(), 1).unwrap();
        let first = Arc::clone(&server)
            .handle(headers(Build::Naive, 7, 1))
            .await;
        assert_eq!(
            first.as_ref().unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(retry_after_ms(&first), Some(300));
        assert_eq!(
            first.as_ref().unwrap().headers()["retry-after"],
            "1",
            "whole seconds, rounded up"
        );

        tokio::time::advance(Duration::from_millis(100)).await;
        let early = Arc::clone(&server)
            .handle(headers(Build::Naive, 7, 2))
            .await;
        assert_eq!(retry_after_ms(&early), Some(200), "the rest of the wait");
        // Another build's request with the same number is not throttled by it.
        let other = Arc::clone(&server)
            .handle(headers(Build::Staunch, 7, 1))
            .await;
        assert_eq!(retry_after_ms(&other), Some(300));

        tokio::time::advance(Duration::from_millis(200)).await;
        let _ = Arc::clone(&server)
            .handle(headers(Build::Naive, 7, 3))
            .await;
        let outcomes: Vec<CallOutcome> = server.calls().iter().map(|c| c.outcome).collect();
        assert_eq!(
            outcomes,
            [
                CallOutcome::Unavailable,
                CallOutcome::TooEarly,
                CallOutcome::Unavailable,
                CallOutcome::Unavailable
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn both_builds_meet_the_same_latency_and_a_down_dependency_fails_fast() {
        let slow = Fault::Slow {
            latency_ms: (600, 2000),
        };
        let server = Server::new(Dependency::Pricing, schedule(slow), Instant::now(), 3).unwrap();
        let mut latencies = Vec::new();
        for build in Build::ALL {
            let start = Instant::now();
            let answer = Arc::clone(&server).handle(headers(build, 11, 1)).await;
            assert_eq!(answer.unwrap().status(), StatusCode::OK);
            latencies.push(start.elapsed());
        }
        assert_eq!(latencies[0], latencies[1]);
        assert!(latencies[0] >= Duration::from_millis(600), "{latencies:?}");
        assert!(latencies[0] <= Duration::from_millis(2000), "{latencies:?}");

        let down = Server::new(
            Dependency::Pricing,
            schedule(Fault::Down { drop_share: 0.5 }),
            Instant::now(),
            3,
        )
        .unwrap();
        let start = Instant::now();
        let mut dropped = 0;
        for id in 0..200 {
            match Arc::clone(&down).handle(headers(Build::Naive, id, 1)).await {
                Err(DropConnection) => dropped += 1,
                Ok(response) => assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE),
            }
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "no waiting when down");
        assert!((60..=140).contains(&dropped), "{dropped} of 200 dropped");
        assert_eq!(down.calls().len(), 200);
    }

    #[test]
    fn every_fault_is_a_chaos_policy_on_a_healthy_handler() {
        let ms = Duration::from_millis;
        let slow = chaos_config(&Fault::Slow {
            latency_ms: (600, 2000),
        });
        assert_eq!(
            (slow.error_rate(), slow.delay_rate(), slow.result_rate()),
            (0.0, 1.0, 0.0)
        );
        assert_eq!(slow.delay_range(), (ms(600), ms(2000)));
        let down = chaos_config(&Fault::Down { drop_share: 0.25 });
        assert_eq!(
            (down.error_rate(), down.delay_rate(), down.result_rate()),
            (0.25, 0.0, 1.0)
        );
        let flaky = chaos_config(&Fault::Flaky {
            error_rate: 0.3,
            retry_after_ms: (150, 400),
            latency_ms: (2, 10),
        });
        assert_eq!(
            (flaky.error_rate(), flaky.delay_rate(), flaky.result_rate()),
            (0.3, 1.0, 0.0)
        );
        assert_eq!(Fault::HEALTHY.injected(), "delay 100% (2-10 ms)");
        assert_eq!(
            Fault::Down { drop_share: 0.5 }.injected(),
            "error 50% (connection dropped), result 100% of the rest (503)"
        );
        assert_eq!(
            Fault::Flaky {
                error_rate: 0.3,
                retry_after_ms: (150, 400),
                latency_ms: (2, 10),
            }
            .injected(),
            "error 30% (503 with Retry-After), delay 100% of the rest (2-10 ms)"
        );
    }

    #[test]
    fn a_fault_that_makes_no_valid_policy_is_refused_with_its_place() {
        let phase = Phase {
            name: "bad".to_owned(),
            duration: Duration::from_secs(1),
            pricing: Fault::HEALTHY,
            inventory: Fault::Down { drop_share: 1.5 },
        };
        let err = Schedule::new(vec![phase]).unwrap_err();
        assert_eq!(err.field(), "phases[0].inventory");
        assert!(err.message().contains("error_rate"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn both_builds_meet_the_same_failures_whenever_they_call() {
        let server = Server::new(
            Dependency::Pricing,
            schedule(Fault::Down { drop_share: 0.5 }),
            Instant::now(),
            5,
        )
        .unwrap();
        // Naive calls in one order, staunch in the reverse order, later.
        for id in 0..50 {
            let _ = Arc::clone(&server)
                .handle(headers(Build::Naive, id, 1))
                .await;
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        for id in (0..50).rev() {
            let _ = Arc::clone(&server)
                .handle(headers(Build::Staunch, id, 1))
                .await;
        }
        let calls = server.calls();
        let outcome = |build, id| {
            calls
                .iter()
                .find(|c| c.build == build && c.id == id)
                .map(|c| c.outcome)
        };
        let dropped = (0..50)
            .filter(|&id| outcome(Build::Naive, id) == Some(CallOutcome::Dropped))
            .count();
        assert!((10..=40).contains(&dropped), "{dropped} of 50");
        for id in 0..50 {
            assert_eq!(
                outcome(Build::Naive, id),
                outcome(Build::Staunch, id),
                "request {id}"
            );
        }
    }

    #[test]
    fn mixing_separates_requests_and_attempts() {
        let a = mix(1, 2, 1);
        assert_ne!(a, mix(1, 2, 2));
        assert_ne!(a, mix(1, 3, 1));
        assert_ne!(a, mix(2, 2, 1));
        assert_eq!(a, mix(1, 2, 1));
    }
}
