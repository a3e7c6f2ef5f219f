//! The composed pipeline against the stacks a user would otherwise build by hand, in one run.
//!
//! Every contender applies the same policies to the same operation, which succeeds at once, so
//! each row is the cost of the machinery on the path nearly every call takes:
//!
//! - `bare`: the operation alone; `bare_tower`: a bare `service_fn`, `ready` then `call`.
//! - `staunch_closure`: `Pipeline::call` with retry (4 attempts from 10 ms), a consecutive-failure
//!   breaker, a 1 s attempt timeout and a value fallback.
//! - `hand_composed`: what a user writes from the peer crates for the same policies: tokio-retry
//!   over a recloser breaker over `tokio::time::timeout`, then `unwrap_or` for the fallback.
//! - `staunch_tower`: the same pipeline as a tower layer over the bare `service_fn`.
//! - `tower_stack`: `tower::retry` over `tower::timeout` (tower has no breaker or fallback).
//! - `tower_resilience`: tower-resilience's fallback > retry > circuit breaker > time limiter.
//!
//! Async harness as in `retry.rs`: one `block_on` of a current-thread runtime per sample, the
//! calls back to back inside it, each result reduced to `.ok()` before `black_box`.
//!
//! Run: `cargo bench -p staunch-bench --bench pipeline -- --warm-up-time 1 --measurement-time 3`;
//! BENCHMARKS.md has the table.

use std::future::Future;
use std::hint::black_box;
use std::io;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use staunch::backoff::Backoff;
use staunch::breaker::{BreakerConfig, CircuitBreaker};
use staunch::deadline::AttemptTimeout;
use staunch::{Pipeline, Retry, RetryConfig};
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

/// Attempts counting the first, for every contender (3 retries).
const ATTEMPTS: u32 = 4;
const INITIAL: Duration = Duration::from_millis(10);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
const FALLBACK: u64 = 0;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
}

/// The operation every closure contender runs.
#[inline]
fn op() -> impl Future<Output = Result<u64, io::Error>> {
    std::future::ready(Ok(black_box(1)))
}

/// The service every tower contender wraps.
fn bare_service(req: u64) -> std::future::Ready<Result<u64, io::Error>> {
    std::future::ready(Ok(black_box(req)))
}

/// Runs `iters` calls of `call` back to back inside one `block_on`, and times them.
fn time_async<E>(
    rt: &Runtime,
    iters: u64,
    mut call: impl AsyncFnMut() -> Result<u64, E>,
) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(call().await.ok());
        }
        start.elapsed()
    })
}

fn staunch_pipeline() -> Pipeline<
    staunch::classify::AllTransient,
    staunch::fallback::Fallback<staunch::fallback::Value<u64>>,
> {
    Pipeline::new()
        .retry(
            Retry::new(
                RetryConfig::new()
                    .with_max_attempts(ATTEMPTS)
                    .with_backoff(Backoff::exponential(INITIAL)),
            )
            .expect("a valid retry"),
        )
        .breaker(
            CircuitBreaker::new(BreakerConfig::consecutive_failures(5).with_open_duration(HOUR))
                .expect("a valid breaker"),
        )
        .attempt_timeout(AttemptTimeout::fixed(ATTEMPT_TIMEOUT))
        .expect("a valid timeout")
        .fallback_value(FALLBACK)
}

/// `tower::retry`'s policy as a user writes it: `None` for `Ok`, exponential sleeps for
/// errors, requests cloned.
#[derive(Clone, Debug)]
struct TowerPolicy {
    retries_left: u32,
    next_delay: Duration,
}

impl<Req: Clone, Res, E> tower::retry::Policy<Req, Res, E> for TowerPolicy {
    type Future = tokio::time::Sleep;

    fn retry(&mut self, _: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        if result.is_ok() || self.retries_left == 0 {
            return None;
        }
        self.retries_left -= 1;
        let delay = self.next_delay;
        self.next_delay = delay.saturating_mul(2);
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

fn pipeline(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("pipeline");

    g.bench_function("bare", |b| {
        b.iter_custom(|iters| time_async(&rt, iters, async || op().await));
    });

    let staunch = staunch_pipeline();
    g.bench_function("staunch_closure", |b| {
        b.iter_custom(|iters| time_async(&rt, iters, async || staunch.call(op).await));
    });

    let recloser = recloser::AsyncRecloser::from(
        recloser::Recloser::custom()
            .closed_len(100)
            .open_wait(HOUR)
            .build(),
    );
    g.bench_function("hand_composed", |b| {
        b.iter_custom(|iters| {
            time_async(&rt, iters, async || {
                let strategy = tokio_retry::strategy::ExponentialBackoff::from_millis(
                    INITIAL.as_millis() as u64,
                )
                .take(ATTEMPTS as usize - 1);
                let value = tokio_retry::Retry::start(strategy, || {
                    recloser.call(async {
                        match tokio::time::timeout(ATTEMPT_TIMEOUT, op()).await {
                            Ok(result) => result,
                            Err(elapsed) => Err(io::Error::other(elapsed)),
                        }
                    })
                })
                .await
                .unwrap_or(FALLBACK);
                Ok::<_, io::Error>(value)
            })
        });
    });

    g.bench_function("bare_tower", |b| {
        let mut svc = service_fn(bare_service);
        b.iter_custom(|iters| {
            time_async(&rt, iters, async || {
                svc.ready().await?.call(black_box(7)).await
            })
        });
    });

    g.bench_function("staunch_tower", |b| {
        let mut svc = staunch.layer().layer(service_fn(bare_service));
        b.iter_custom(|iters| {
            time_async(&rt, iters, async || {
                svc.ready().await?.call(black_box(7)).await
            })
        });
    });

    g.bench_function("tower_stack", |b| {
        let policy = TowerPolicy {
            retries_left: ATTEMPTS - 1,
            next_delay: INITIAL,
        };
        let mut svc = ServiceBuilder::new()
            .retry(policy)
            .timeout(ATTEMPT_TIMEOUT)
            .service_fn(bare_service);
        b.iter_custom(|iters| {
            time_async(&rt, iters, async || {
                svc.ready().await?.call(black_box(7)).await
            })
        });
    });

    g.bench_function("tower_resilience", |b| {
        use tower_resilience::circuitbreaker::CircuitBreakerLayer;
        use tower_resilience::fallback::FallbackLayer;
        use tower_resilience::retry::RetryLayer;
        use tower_resilience::timelimiter::TimeLimiterLayer;

        let time_limiter = TimeLimiterLayer::builder()
            .timeout_duration(ATTEMPT_TIMEOUT)
            .cancel_running_future(true)
            .build();
        let breaker = CircuitBreakerLayer::builder()
            .consecutive_failures(5)
            .wait_duration_in_open(HOUR)
            .build()
            .expect("a valid breaker");
        let inner = breaker.layer(time_limiter.layer(service_fn(bare_service)));
        type Inner = tower_resilience::circuitbreaker::CircuitBreakerError<
            tower_resilience::timelimiter::TimeLimiterError<io::Error>,
        >;
        let retry = RetryLayer::<u64, u64, Inner>::builder()
            .max_attempts(ATTEMPTS as usize)
            .exponential_backoff(INITIAL)
            .build();
        let mut svc = FallbackLayer::<u64, u64, Inner>::value(FALLBACK).layer(retry.layer(inner));
        b.iter_custom(|iters| {
            time_async(&rt, iters, async || {
                svc.ready().await?.call(black_box(7)).await
            })
        });
    });
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
