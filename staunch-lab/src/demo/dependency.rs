//! The `pricing` and `inventory` dependencies: HTTP servers that follow the fault schedule and
//! log every call they receive.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::StatusCode;
use hyper::header::HeaderMap;
use tokio::time::Instant;

use super::Build;
use super::net::{self, Answer, DropConnection};
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

/// A running dependency: its shared state.
pub(crate) struct Server {
    dependency: Dependency,
    schedule: Arc<Schedule>,
    start: Instant,
    seed: u64,
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
    pub(crate) fn new(
        dependency: Dependency,
        schedule: Arc<Schedule>,
        start: Instant,
        seed: u64,
    ) -> Arc<Self> {
        Arc::new(Self {
            dependency,
            schedule,
            start,
            seed,
            calls: Mutex::new(Vec::new()),
            not_before: Mutex::new(HashMap::new()),
        })
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
        // Every decision comes from the seed, the request and the attempt, not the build: both
        // builds meet the same latencies and failures for the same request.
        let mut rng =
            fastrand::Rng::with_seed(mix(self.seed ^ self.dependency.salt(), id, attempt));
        let fault = match self.dependency {
            Dependency::Pricing => self.schedule.phases()[phase].pricing,
            Dependency::Inventory => self.schedule.phases()[phase].inventory,
        };
        let record = |outcome| {
            lock(&self.calls).push(Call {
                at,
                build,
                id,
                phase,
                outcome,
            });
        };
        match fault {
            Fault::Healthy { latency_ms } | Fault::Slow { latency_ms } => {
                record(CallOutcome::Ok);
                tokio::time::sleep(draw(&mut rng, latency_ms)).await;
                self.ok()
            }
            Fault::Down { drop_share } => {
                if rng.f64() < drop_share {
                    record(CallOutcome::Dropped);
                    Err(DropConnection)
                } else {
                    record(CallOutcome::Unavailable);
                    net::respond(StatusCode::SERVICE_UNAVAILABLE, "down", &[])
                }
            }
            Fault::Flaky {
                error_rate,
                retry_after_ms,
                latency_ms,
            } => {
                let key = (build, id);
                let waiting = lock(&self.not_before)
                    .get(&key)
                    .map(|not_before| not_before.saturating_duration_since(now))
                    .filter(|wait| !wait.is_zero());
                if let Some(wait) = waiting {
                    record(CallOutcome::TooEarly);
                    return unavailable(wait);
                }
                if rng.f64() < error_rate {
                    let wait = draw(&mut rng, retry_after_ms);
                    lock(&self.not_before).insert(key, now + wait);
                    record(CallOutcome::Unavailable);
                    return unavailable(wait);
                }
                record(CallOutcome::Ok);
                tokio::time::sleep(draw(&mut rng, latency_ms)).await;
                self.ok()
            }
        }
    }

    fn ok(&self) -> Answer {
        let body = match self.dependency {
            Dependency::Pricing => "12.50",
            Dependency::Inventory => "3",
        };
        net::respond(StatusCode::OK, body, &[])
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
        let server = Server::new(Dependency::Pricing, schedule(flaky), Instant::now(), 1);
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
        let server = Server::new(Dependency::Pricing, schedule(slow), Instant::now(), 3);
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
        );
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
    fn mixing_separates_requests_and_attempts() {
        let a = mix(1, 2, 1);
        assert_ne!(a, mix(1, 2, 2));
        assert_ne!(a, mix(1, 3, 1));
        assert_ne!(a, mix(2, 2, 1));
        assert_eq!(a, mix(1, 2, 1));
    }
}
