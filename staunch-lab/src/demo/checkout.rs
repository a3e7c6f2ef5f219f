//! The checkout service, in two builds: `naive` (the textbook mistakes) and `staunch` (the
//! pipeline).
//!
//! Both do the same thing: get a price from pricing (falling back to a default price if pricing
//! fails), then the stock from inventory (whose failure fails the request), and answer 200 with
//! an `x-demo-fallback` header, or 503.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::StatusCode;
use hyper::body::Bytes;
use hyper::header::HeaderMap;
use staunch::backoff::{Backoff, Jitter};
use staunch::breaker::{BreakerConfig, CircuitBreaker, State};
use staunch::classify::Class;
use staunch::deadline::AttemptTimeout;
use staunch::fallback::{Fallback, FallbackOn, Value};
use staunch::retry::{BudgetConfig, RetryBudget};
use staunch::{ConfigError, Deadline, Pipeline, Retry, RetryConfig};
use tokio::time::Instant;

use super::Build;
use super::dependency::{Dependency, lock};
use super::net::{self, Answer, DepError, HttpClient, Reply};

/// Naive build: attempts per dependency call (the first call and three retries).
pub const NAIVE_ATTEMPTS: u32 = 4;
/// Naive build: the fixed delay between attempts, with no jitter.
pub const NAIVE_DELAY: Duration = Duration::from_millis(100);

/// Staunch build: the deadline of a whole checkout request.
pub const DEADLINE: Duration = Duration::from_secs(5);
/// Staunch build: the cap on each pricing attempt.
pub const PRICING_TIMEOUT: Duration = Duration::from_millis(500);
/// Staunch build: attempts per pricing call. One retry: a price that was slow once is likely
/// slow again, and the fallback price is good enough.
pub const PRICING_ATTEMPTS: u32 = 2;
/// Staunch build: the cap on each inventory attempt.
pub const INVENTORY_TIMEOUT: Duration = Duration::from_millis(200);
/// Staunch build: attempts per inventory call.
pub const INVENTORY_ATTEMPTS: u32 = 3;
/// Staunch build: the first retry's backoff (exponential, doubling, full jitter).
pub const BACKOFF: Duration = Duration::from_millis(50);
/// Staunch build: the longest backoff between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_millis(400);
/// Staunch build: the longest Retry-After hint honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Staunch build: consecutive pricing failures that open the breaker.
pub const BREAKER_FAILURES: u32 = 5;
/// Staunch build: how long the pricing breaker stays open before a probe.
pub const BREAKER_OPEN: Duration = Duration::from_secs(2);
/// Staunch build: retries may add at most this share of each dependency's calls (plus a floor).
pub const BUDGET_RATIO: f64 = 0.1;

/// The price used when pricing cannot answer.
const FALLBACK_PRICE: &str = "9.99";

/// One-line descriptions of the two builds, for the report.
pub(crate) fn describe(build: Build) -> String {
    match build {
        Build::Naive => format!(
            "up to {NAIVE_ATTEMPTS} attempts per call, {} ms apart, no jitter; no timeouts, no \
             breaker; fallback price once pricing's attempts are spent",
            NAIVE_DELAY.as_millis()
        ),
        Build::Staunch => format!(
            "{} s request deadline; pricing: {} ms per attempt, {PRICING_ATTEMPTS} attempts, \
             breaker ({BREAKER_FAILURES} failures in a row, open {} s), fallback price; \
             inventory: {} ms per attempt, {INVENTORY_ATTEMPTS} attempts honouring Retry-After, \
             no fallback; jittered backoff and a {:.0}% retry budget per dependency",
            DEADLINE.as_secs(),
            PRICING_TIMEOUT.as_millis(),
            BREAKER_OPEN.as_secs(),
            INVENTORY_TIMEOUT.as_millis(),
            BUDGET_RATIO * 100.0,
        ),
    }
}

/// A breaker state change, as the report's timeline shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// When, since the start of the run.
    pub at: Duration,
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// Why, as staunch names it (`tripped`, `open_elapsed`, `probe_failed`, ...).
    pub reason: &'static str,
}

type Classifier = fn(&Result<Reply, DepError>) -> Class;

/// HTTP classification: a 503/429 with a hint waits at least the hint, other 5xx, 429 and
/// transport errors are transient, any other status permanent.
fn classify(result: &Result<Reply, DepError>) -> Class {
    match result {
        Ok(_) => Class::Success,
        Err(DepError::Transport(_)) => Class::Transient,
        Err(DepError::Status {
            status,
            retry_after,
        }) => match (status, retry_after) {
            (429 | 503, Some(hint)) => Class::RetryAfter(*hint),
            (429 | 500..=599, _) => Class::Transient,
            _ => Class::Permanent,
        },
    }
}

/// The staunch build's two pipelines, built once and shared by every request.
struct Policies {
    pricing: Pipeline<Classifier, Fallback<Value<Reply>>>,
    inventory: Pipeline<Classifier>,
}

fn retry(attempts: u32, seed: u64) -> Result<Retry<Classifier>, ConfigError> {
    let backoff = Backoff::exponential(BACKOFF)
        .with_max_delay(MAX_BACKOFF)
        .with_jitter(Jitter::Full)
        .with_seed(seed);
    let config = RetryConfig::new()
        .with_max_attempts(attempts)
        .with_backoff(backoff)
        .with_max_retry_after(MAX_RETRY_AFTER);
    Ok(Retry::new(config)?
        .with_budget(RetryBudget::new(BudgetConfig::ratio(BUDGET_RATIO))?)
        .classify(classify as Classifier))
}

impl Policies {
    fn new(
        seed: u64,
        start: Instant,
        timeline: Arc<Mutex<Vec<Transition>>>,
    ) -> Result<Self, ConfigError> {
        let start = start.into_std();
        let breaker = CircuitBreaker::builder(
            BreakerConfig::consecutive_failures(BREAKER_FAILURES).with_open_duration(BREAKER_OPEN),
        )
        .name("pricing")
        .on_state_change(move |change| {
            lock(&timeline).push(Transition {
                at: change.at.saturating_duration_since(start),
                from: change.from,
                to: change.to,
                reason: change.reason.as_str(),
            });
        })
        .build()?;
        let fallback = Reply {
            body: Bytes::from_static(FALLBACK_PRICE.as_bytes()),
            fallback: true,
        };
        let pricing = Pipeline::new()
            .retry(retry(PRICING_ATTEMPTS, seed)?)
            .breaker(breaker)
            .attempt_timeout(AttemptTimeout::fixed(PRICING_TIMEOUT))?
            // Any failure of pricing gets the fallback price, not only the default ones
            // (open circuit, timeout, attempts spent): a refused retry or a 4xx too.
            .with_fallback(Fallback::value(fallback).on(FallbackOn::ALL));
        let inventory = Pipeline::new()
            .retry(retry(INVENTORY_ATTEMPTS, seed.wrapping_add(1))?)
            .attempt_timeout(AttemptTimeout::fixed(INVENTORY_TIMEOUT))?;
        Ok(Self { pricing, inventory })
    }
}

/// One build of checkout.
pub(crate) struct Checkout {
    build: Build,
    client: HttpClient,
    pricing: SocketAddr,
    inventory: SocketAddr,
    policies: Option<Policies>,
    /// How many times each request number was handled (exactly once, if all is well).
    handled: Vec<AtomicU32>,
    /// Requests with no number, or a number out of range.
    unknown: AtomicU64,
}

impl std::fmt::Debug for Checkout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkout")
            .field("build", &self.build)
            .finish_non_exhaustive()
    }
}

impl Checkout {
    /// A checkout `build` calling the dependencies at `pricing` and `inventory`, for request
    /// numbers below `requests`. The staunch build records its breaker's changes in `timeline`.
    pub(crate) fn new(
        build: Build,
        addrs: (SocketAddr, SocketAddr),
        requests: u64,
        seed: u64,
        start: Instant,
        timeline: Arc<Mutex<Vec<Transition>>>,
    ) -> Result<Arc<Self>, ConfigError> {
        let policies = match build {
            Build::Naive => None,
            Build::Staunch => Some(Policies::new(seed, start, timeline)?),
        };
        Ok(Arc::new(Self {
            build,
            client: net::client(),
            pricing: addrs.0,
            inventory: addrs.1,
            policies,
            handled: (0..requests).map(|_| AtomicU32::new(0)).collect(),
            unknown: AtomicU64::new(0),
        }))
    }

    /// How many times each request number was handled, and how many requests had no valid
    /// number.
    pub(crate) fn handled(&self) -> (Vec<u32>, u64) {
        let counts = self
            .handled
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        (counts, self.unknown.load(Ordering::Relaxed))
    }

    /// Handles one checkout request, with the request's `headers` (its body is empty).
    pub(crate) async fn handle(self: Arc<Self>, headers: HeaderMap) -> Answer {
        let id = net::header_u64(&headers, net::REQUEST_ID);
        match id.and_then(|id| self.handled.get(usize::try_from(id).ok()?)) {
            Some(count) => {
                count.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                self.unknown.fetch_add(1, Ordering::Relaxed);
            }
        }
        let id = id.unwrap_or(u64::MAX);
        let outcome = match &self.policies {
            None => self.naive(id).await,
            Some(policies) => self.staunch(policies, id).await,
        };
        match outcome {
            Ok(price) => net::respond(
                StatusCode::OK,
                &String::from_utf8_lossy(&price.body),
                &[(net::FALLBACK, u8::from(price.fallback).to_string())],
            ),
            Err(why) => net::respond(StatusCode::SERVICE_UNAVAILABLE, &why, &[]),
        }
    }

    /// The textbook: retry every failure after a fixed delay, wait as long as it takes.
    async fn naive(&self, id: u64) -> Result<Reply, String> {
        let price = self
            .naive_call(self.pricing, id)
            .await
            .unwrap_or_else(|_| Reply {
                body: Bytes::from_static(FALLBACK_PRICE.as_bytes()),
                fallback: true,
            });
        match self.naive_call(self.inventory, id).await {
            Ok(_) => Ok(price),
            Err(e) => Err(format!("inventory failed: {e}")),
        }
    }

    async fn naive_call(&self, addr: SocketAddr, id: u64) -> Result<Reply, DepError> {
        let mut attempt = 1;
        loop {
            match net::call_dependency(&self.client, addr, self.build, id, attempt).await {
                Ok(reply) => return Ok(reply),
                Err(e) if attempt >= NAIVE_ATTEMPTS => return Err(e),
                Err(_) => {
                    tokio::time::sleep(NAIVE_DELAY).await;
                    attempt += 1;
                }
            }
        }
    }

    /// The canonical example: one deadline for the request, a pipeline per dependency.
    async fn staunch(&self, policies: &Policies, id: u64) -> Result<Reply, String> {
        Deadline::after(DEADLINE)
            .scope(async {
                let price = self
                    .staunch_call(&policies.pricing, Dependency::Pricing, id)
                    .await;
                // Unreachable with a fallback on every failure, but a price is a price.
                let price = price.unwrap_or_else(|_| Reply {
                    body: Bytes::from_static(FALLBACK_PRICE.as_bytes()),
                    fallback: true,
                });
                match self
                    .staunch_call(&policies.inventory, Dependency::Inventory, id)
                    .await
                {
                    Ok(_) => Ok(price),
                    Err(e) => Err(format!(
                        "inventory failed after {} attempt(s): {}",
                        e.attempts(),
                        e.reason()
                    )),
                }
            })
            .await
    }

    async fn staunch_call<F>(
        &self,
        pipeline: &Pipeline<Classifier, F>,
        dependency: Dependency,
        id: u64,
    ) -> Result<Reply, staunch::Error<DepError>>
    where
        F: staunch::pipeline::Recover<Reply, DepError>,
    {
        let addr = match dependency {
            Dependency::Pricing => self.pricing,
            Dependency::Inventory => self.inventory,
        };
        let mut attempt = 0;
        pipeline
            .call(|| {
                attempt += 1;
                net::call_dependency(&self.client, addr, self.build, id, attempt)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let status = |status, retry_after| {
            Err(DepError::Status {
                status,
                retry_after,
            })
        };
        let hint = Duration::from_millis(250);
        assert_eq!(classify(&status(503, Some(hint))), Class::RetryAfter(hint));
        assert_eq!(classify(&status(503, None)), Class::Transient);
        assert_eq!(classify(&status(500, Some(hint))), Class::Transient);
        assert_eq!(classify(&status(404, None)), Class::Permanent);
        assert_eq!(
            classify(&Err(DepError::Transport("reset".into()))),
            Class::Transient
        );
    }

    #[test]
    fn the_policies_are_valid() {
        let timeline = Arc::new(Mutex::new(Vec::new()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async { Policies::new(1, Instant::now(), timeline).unwrap() });
    }
}
