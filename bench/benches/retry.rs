//! Retry around an operation that succeeds at once, side by side with the bare call and the peer
//! crates (`tower::retry`, backon, tokio-retry), plus the cost of one backoff delay.
//!
//! Every contender runs the same operation (`Ok(black_box(1u64))`) in the same harness:
//!
//! - async: one `block_on` of a current-thread runtime per criterion sample, with the calls
//!   made back to back inside it (`iter_custom`), so the runtime's entry cost is not part of any
//!   contender's time. Each row's overhead is its time minus its own baseline's: the bare call
//!   for closures, the bare `service_fn` (`ready().await` then `call`) for tower services.
//! - blocking: `b.iter` around one call.
//! - backoff: `next()` over the first 8 delays of a fresh iterator (built outside the timing),
//!   reported per delay through the throughput.
//!
//! Run with `cargo bench -p staunch-bench --bench retry`; BENCHMARKS.md has the numbers.

use std::future::Future;
use std::hint::black_box;
use std::io;
use std::time::Duration;

use backon::{BlockingRetryable, ExponentialBuilder, Retryable};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use staunch::backoff::{Backoff, Jitter};
use staunch::retry::RetryLayer;
use staunch::{Retry, RetryConfig};
use staunch_bench::time_async;
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt, service_fn};

/// Attempts counting the first, the same for every contender (3 retries).
const ATTEMPTS: u32 = 4;
const INITIAL: Duration = Duration::from_millis(10);

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
}

fn staunch_retry() -> Retry {
    Retry::new(
        RetryConfig::new()
            .with_max_attempts(ATTEMPTS)
            .with_backoff(Backoff::exponential(INITIAL)),
    )
    .expect("a valid config")
}

/// The operation every async contender retries.
#[inline]
fn op() -> impl Future<Output = Result<u64, io::Error>> {
    std::future::ready(Ok(black_box(1)))
}

/// The operation every blocking contender retries.
#[inline]
fn op_blocking() -> Result<u64, io::Error> {
    Ok(black_box(1))
}

/// The `tower::retry` policy a user would write for the same schedule: `None` for `Ok`,
/// exponential sleeps for errors, requests cloned.
#[derive(Clone, Debug)]
struct TowerPolicy {
    retries_left: u32,
    next_delay: Duration,
}

impl TowerPolicy {
    fn new() -> Self {
        Self {
            retries_left: ATTEMPTS - 1,
            next_delay: INITIAL,
        }
    }
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

/// The service every tower contender wraps.
fn bare_service(req: u64) -> std::future::Ready<Result<u64, io::Error>> {
    std::future::ready(Ok(black_box(req)))
}

fn async_calls(c: &mut Criterion) {
    let rt = runtime();
    let retry = staunch_retry();
    let mut g = c.benchmark_group("retry_async_success");

    g.bench_function("bare call", |b| {
        b.iter_custom(|iters| time_async(&rt, iters, async || op().await));
    });
    g.bench_function("staunch Retry::call", |b| {
        b.iter_custom(|iters| time_async(&rt, iters, async || retry.call(op).await));
    });
    g.bench_function("backon retry", |b| {
        let builder = ExponentialBuilder::default()
            .with_min_delay(INITIAL)
            .with_max_times(ATTEMPTS as usize - 1);
        b.iter_custom(|iters| {
            time_async(&rt, iters, async || {
                op.retry(builder).sleep(tokio::time::sleep).await
            })
        });
    });
    g.bench_function("tokio-retry Retry::start", |b| {
        b.iter_custom(|iters| {
            time_async(&rt, iters, async || {
                let strategy = tokio_retry::strategy::ExponentialBackoff::from_millis(10)
                    .take(ATTEMPTS as usize - 1);
                tokio_retry::Retry::start(strategy, op).await
            })
        });
    });

    let service = service_fn(bare_service);
    g.bench_function("tower: bare service_fn", |b| {
        let mut svc = service;
        b.iter_custom(|iters| {
            time_async(&rt, iters, async || {
                svc.ready().await?.call(black_box(7)).await
            })
        });
    });
    g.bench_function("tower: tower::retry::Retry", |b| {
        let mut svc = tower::retry::Retry::new(TowerPolicy::new(), service);
        b.iter_custom(|iters| {
            time_async(&rt, iters, async || {
                svc.ready().await?.call(black_box(7)).await
            })
        });
    });
    g.bench_function("tower: staunch RetryLayer", |b| {
        let mut svc = RetryLayer::new(staunch_retry()).layer(service);
        b.iter_custom(|iters| {
            time_async(&rt, iters, async || {
                svc.ready().await?.call(black_box(7)).await
            })
        });
    });
    g.finish();
}

fn blocking_calls(c: &mut Criterion) {
    let retry = staunch_retry();
    let builder = ExponentialBuilder::default()
        .with_min_delay(INITIAL)
        .with_max_times(ATTEMPTS as usize - 1);
    let mut g = c.benchmark_group("retry_blocking_success");
    g.bench_function("bare call", |b| b.iter(|| op_blocking().ok()));
    g.bench_function("staunch Retry::call_blocking", |b| {
        b.iter(|| retry.call_blocking(op_blocking).ok());
    });
    g.bench_function("backon BlockingRetryable", |b| {
        b.iter(|| op_blocking.retry(builder).call().ok());
    });
    g.finish();
}

/// Delays taken from each fresh iterator: a call rarely retries more often.
const DELAYS: u64 = 8;

fn backoff_next(c: &mut Criterion) {
    let mut g = c.benchmark_group("backoff_next");
    g.throughput(Throughput::Elements(DELAYS));
    let exponential = Backoff::exponential(INITIAL).with_max_delay(Duration::from_secs(10));
    for (name, jitter) in [
        ("staunch None", Jitter::None),
        ("staunch Full", Jitter::Full),
        ("staunch Equal", Jitter::Equal),
        ("staunch Decorrelated", Jitter::Decorrelated),
    ] {
        let backoff = exponential.with_jitter(jitter);
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || backoff.delays().expect("a valid backoff"),
                take,
                BatchSize::SmallInput,
            );
        });
    }
    let backon = ExponentialBuilder::default()
        .with_min_delay(INITIAL)
        .with_max_delay(Duration::from_secs(10))
        .without_max_times();
    g.bench_function("backon exponential", |b| {
        b.iter_batched_ref(
            || backon::BackoffBuilder::build(backon),
            take,
            BatchSize::SmallInput,
        );
    });
    g.bench_function("backon exponential, jitter", |b| {
        b.iter_batched_ref(
            || backon::BackoffBuilder::build(backon.with_jitter()),
            take,
            BatchSize::SmallInput,
        );
    });
    g.bench_function("tokio-retry exponential", |b| {
        b.iter_batched_ref(
            || {
                tokio_retry::strategy::ExponentialBackoff::from_millis(10)
                    .max_delay(Duration::from_secs(10))
            },
            take,
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

/// The next `DELAYS` delays of `delays`.
#[inline]
fn take(delays: &mut impl Iterator<Item = Duration>) {
    for _ in 0..DELAYS {
        black_box(delays.next());
    }
}

criterion_group!(benches, async_calls, blocking_calls, backoff_next);
criterion_main!(benches);
