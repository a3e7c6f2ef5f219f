//! A hedged call whose first attempt answers before the delay (the path nearly every call
//! takes), side by side with `tower::hedge`, staunch's retry on the same path and the bare call.
//!
//! The harness is `benches/retry.rs`'s: one `block_on` of a current-thread runtime per
//! criterion sample, the calls made back to back inside it (`iter_custom`); each result is
//! reduced to `.ok()` before `black_box`. Two operations:
//!
//! - `at once`: `std::future::ready(Ok(1))`, answered at the first poll: the policy's own cost.
//!   No hedging policy arms its timer for it.
//! - `after waiting`: a future that is `Pending` once (waking itself) and then ready, as every
//!   network call is at least once: a hedging policy arms its timer, then drops it.
//!
//! Every hedging contender is configured so that the delay is far away: staunch with a fixed
//! 50 ms delay (and, in one row, an adaptive p95 between 1 ms and 50 ms), `tower::hedge` with
//! its histogram primed with 50 ms latencies (`new_with_mock_latencies`, p95, 10 data points
//! needed, a one-hour rotation period), so that each would hedge and none does.
//!
//! Run with `cargo bench -p staunch-bench --bench hedge`; BENCHMARKS.md has the numbers.

use std::hint::black_box;
use std::io;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use staunch::backoff::Backoff;
use staunch::hedge::{Hedge, HedgeConfig, HedgeDelay, HedgeLayer};
use staunch::retry::RetryLayer;
use staunch::{Retry, RetryConfig};
use staunch_bench::{AfterWaiting, time_async, tower_hedge};
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt, service_fn};

const DELAY: Duration = Duration::from_millis(50);

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
}

fn fixed() -> Hedge {
    Hedge::new(HedgeConfig::new(HedgeDelay::fixed(DELAY))).expect("a valid config")
}

fn adaptive() -> Hedge {
    Hedge::new(HedgeConfig::new(
        HedgeDelay::percentile(95.0).with_max(DELAY),
    ))
    .expect("a valid config")
}

fn retry() -> Retry {
    Retry::new(
        RetryConfig::new()
            .with_max_attempts(2)
            .with_backoff(Backoff::exponential(Duration::from_millis(10))),
    )
    .expect("a valid config")
}

/// Answered at the first poll.
#[inline]
fn at_once() -> std::future::Ready<Result<u64, io::Error>> {
    std::future::ready(Ok(black_box(1)))
}

#[inline]
fn after_waiting() -> AfterWaiting {
    AfterWaiting::default()
}

fn closures(c: &mut Criterion) {
    let rt = runtime();
    let (retry, fixed, adaptive) = (retry(), fixed(), adaptive());
    let mut g = c.benchmark_group("hedge");

    g.bench_function("at once: bare call", |b| {
        b.iter_custom(|iters| time_async(&rt, iters, async || at_once().await));
    });
    g.bench_function("at once: staunch Retry::call", |b| {
        b.iter_custom(|iters| time_async(&rt, iters, async || retry.call(at_once).await));
    });
    g.bench_function("at once: staunch Hedge::call, fixed", |b| {
        b.iter_custom(|iters| time_async(&rt, iters, async || fixed.call(at_once).await));
    });
    g.bench_function("at once: staunch Hedge::call, adaptive", |b| {
        b.iter_custom(|iters| time_async(&rt, iters, async || adaptive.call(at_once).await));
    });

    g.bench_function("after waiting: bare call", |b| {
        b.iter_custom(|iters| time_async(&rt, iters, async || after_waiting().await));
    });
    g.bench_function("after waiting: staunch Retry::call", |b| {
        b.iter_custom(|iters| time_async(&rt, iters, async || retry.call(after_waiting).await));
    });
    g.bench_function("after waiting: staunch Hedge::call, fixed", |b| {
        b.iter_custom(|iters| time_async(&rt, iters, async || fixed.call(after_waiting).await));
    });
    g.bench_function("after waiting: staunch Hedge::call, adaptive", |b| {
        b.iter_custom(|iters| time_async(&rt, iters, async || adaptive.call(after_waiting).await));
    });
    g.finish();
}

fn services(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("hedge");
    let ready =
        service_fn(|request: u64| std::future::ready(Ok::<_, io::Error>(black_box(request))));
    let waiting = service_fn(|_: u64| after_waiting());

    macro_rules! tower_rows {
        ($prefix:literal, $service:expr) => {
            g.bench_function(concat!($prefix, ": tower: bare service_fn"), |b| {
                let mut svc = $service;
                b.iter_custom(|iters| {
                    time_async(&rt, iters, async || {
                        svc.ready().await?.call(black_box(7)).await
                    })
                });
            });
            g.bench_function(concat!($prefix, ": tower: tower::hedge::Hedge"), |b| {
                let mut svc = tower_hedge($service);
                b.iter_custom(|iters| {
                    time_async(&rt, iters, async || {
                        svc.ready().await?.call(black_box(7)).await
                    })
                });
            });
            g.bench_function(concat!($prefix, ": tower: staunch RetryLayer"), |b| {
                let mut svc = RetryLayer::new(retry()).layer($service);
                b.iter_custom(|iters| {
                    time_async(&rt, iters, async || {
                        svc.ready().await?.call(black_box(7)).await
                    })
                });
            });
            g.bench_function(concat!($prefix, ": tower: staunch HedgeLayer"), |b| {
                let mut svc = HedgeLayer::new(fixed()).layer($service);
                b.iter_custom(|iters| {
                    time_async(&rt, iters, async || {
                        svc.ready().await?.call(black_box(7)).await
                    })
                });
            });
        };
    }
    tower_rows!("at once", ready);
    tower_rows!("after waiting", waiting);
    g.finish();
}

criterion_group!(benches, closures, services);
criterion_main!(benches);
