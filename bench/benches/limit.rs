//! The concurrency limit side by side with tokio's semaphore, tower's `ConcurrencyLimit` and
//! tower-resilience's bulkhead and adaptive limiter, in one run.
//!
//! Run: `cargo bench -p staunch-bench --bench limit -- --warm-up-time 1 --measurement-time 3`
//! and see BENCHMARKS.md for the table. Every entry acquires a slot and releases it, with
//! nobody else holding one (group `limit`), or with two threads doing so at once on one limit
//! (group `limit_two_threads`). The tower entries do `ready` + `call` on a bare `service_fn`
//! that answers at once, polled once with a no-op waker; `tower_bare` is that service alone.

use std::future::Future;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use staunch::limit::{
    Aimd, ConcurrencyLimit, ConcurrencyLimitLayer, Gradient2, LimitConfig, Vegas,
};
use tower::{Layer as _, Service, ServiceExt as _};

type Io = std::io::Error;

// ---- limits under test ------------------------------------------------------------------------

fn staunch_fixed() -> ConcurrencyLimit {
    ConcurrencyLimit::new(LimitConfig::fixed(100)).unwrap()
}

/// AIMD with Netflix's defaults (limit 20 to 200).
fn staunch_aimd() -> ConcurrencyLimit {
    ConcurrencyLimit::new(LimitConfig::aimd(Aimd::new())).unwrap()
}

fn staunch_vegas() -> ConcurrencyLimit {
    ConcurrencyLimit::new(LimitConfig::vegas(Vegas::new())).unwrap()
}

fn staunch_gradient2() -> ConcurrencyLimit {
    ConcurrencyLimit::new(LimitConfig::gradient2(Gradient2::new())).unwrap()
}

fn bare() -> impl Service<u64, Response = u64, Error = Io, Future: Send> + Clone + Sync {
    tower::service_fn(|x: u64| std::future::ready(Ok::<_, Io>(black_box(x))))
}

fn tower_concurrency_limit() -> impl Service<u64, Response = u64> + Clone + Sync {
    // `ConcurrencyLimit` reserves in `poll_ready`; its clones share one semaphore.
    tower::limit::ConcurrencyLimitLayer::new(100).layer(bare())
}

fn tower_resilience_bulkhead() -> impl Service<u64, Response = u64> + Clone + Sync {
    tower_resilience::bulkhead::BulkheadLayer::builder()
        .max_concurrent_calls(100)
        .build()
        .unwrap()
        .layer(bare())
}

fn tower_resilience_adaptive() -> impl Service<u64, Response = u64> + Clone + Sync {
    tower_resilience::adaptive::AdaptiveLimiterLayer::new(
        tower_resilience::adaptive::Aimd::builder()
            .initial_limit(20)
            .min_limit(20)
            .max_limit(200)
            .latency_threshold(Duration::from_secs(5))
            .build()
            .unwrap(),
    )
    .layer(bare())
}

fn staunch_layer(limit: ConcurrencyLimit) -> impl Service<u64, Response = u64> + Clone + Sync {
    ConcurrencyLimitLayer::new(limit).layer(bare())
}

/// The layer over a limit leaked once, as a process-long limit would be: no reference count
/// per call.
fn staunch_layer_static(
    limit: ConcurrencyLimit,
) -> impl Service<u64, Response = u64> + Clone + Sync {
    let limit: &'static ConcurrencyLimit = Box::leak(Box::new(limit));
    ConcurrencyLimitLayer::new_static(limit).layer(bare())
}

// ---- harness helpers --------------------------------------------------------------------------

/// Polls a future once with a no-op waker (every service here is ready at once). Inlined, so
/// the future is built where it is polled.
#[inline(always)]
fn poll_once<F: Future>(f: F) -> bool {
    let f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    f.poll(&mut cx).is_ready()
}

/// `ready` + `call` on `svc`, polled once.
#[inline(always)]
fn tower_call<S: Service<u64>>(svc: &mut S, i: u64) {
    black_box(poll_once(async {
        let svc = svc.ready().await.ok()?;
        svc.call(i).await.ok()
    }));
}

/// Time per call per thread with two threads calling at once; `make` gives each thread its own
/// caller (sharing one limit).
fn two_threads<M, F>(iters: u64, make: M) -> Duration
where
    M: Fn() -> F + Sync,
    F: FnMut(u64),
{
    let barrier = Barrier::new(2);
    let run = || {
        let mut f = make();
        barrier.wait();
        let start = Instant::now();
        for i in 0..iters {
            f(i);
        }
        start.elapsed()
    };
    std::thread::scope(|s| {
        let other = s.spawn(run);
        let mine = run();
        mine.max(other.join().unwrap())
    })
}

// ---- groups -----------------------------------------------------------------------------------

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("limit");
    let fixed = staunch_fixed();
    g.bench_function("staunch_fixed", |b| {
        b.iter(|| fixed.try_acquire().unwrap().success())
    });
    let aimd = staunch_aimd();
    g.bench_function("staunch_adaptive", |b| {
        b.iter(|| aimd.try_acquire().unwrap().success())
    });
    let vegas = staunch_vegas();
    g.bench_function("staunch_adaptive_vegas", |b| {
        b.iter(|| vegas.try_acquire().unwrap().success())
    });
    let gradient2 = staunch_gradient2();
    g.bench_function("staunch_adaptive_gradient2", |b| {
        b.iter(|| gradient2.try_acquire().unwrap().success())
    });
    let semaphore = tokio::sync::Semaphore::new(100);
    g.bench_function("tokio_semaphore", |b| {
        b.iter(|| drop(black_box(semaphore.try_acquire().unwrap())))
    });
    let mut svc = bare();
    g.bench_function("tower_bare", |b| b.iter_custom(|n| tower_loop(n, &mut svc)));
    let mut svc = tower_concurrency_limit();
    g.bench_function("tower_concurrency_limit", |b| {
        b.iter_custom(|n| tower_loop(n, &mut svc))
    });
    let mut svc = staunch_layer(staunch_fixed());
    g.bench_function("staunch_fixed_layer", |b| {
        b.iter_custom(|n| tower_loop(n, &mut svc))
    });
    let mut svc = staunch_layer_static(staunch_fixed());
    g.bench_function("staunch_fixed_layer_static", |b| {
        b.iter_custom(|n| tower_loop(n, &mut svc))
    });
    let mut svc = staunch_layer(staunch_aimd());
    g.bench_function("staunch_adaptive_layer", |b| {
        b.iter_custom(|n| tower_loop(n, &mut svc))
    });
    let mut svc = tower_resilience_bulkhead();
    g.bench_function("tower_resilience_bulkhead", |b| {
        b.iter_custom(|n| tower_loop(n, &mut svc))
    });
    let mut svc = tower_resilience_adaptive();
    g.bench_function("tower_resilience_adaptive", |b| {
        b.iter_custom(|n| tower_loop(n, &mut svc))
    });
    g.finish();
}

fn tower_loop<S: Service<u64>>(iters: u64, svc: &mut S) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        tower_call(svc, i);
    }
    start.elapsed()
}

fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("limit_two_threads");
    let fixed = staunch_fixed();
    g.bench_function("staunch_fixed", |b| {
        b.iter_custom(|n| two_threads(n, || |_| fixed.try_acquire().unwrap().success()))
    });
    let aimd = staunch_aimd();
    g.bench_function("staunch_adaptive", |b| {
        b.iter_custom(|n| two_threads(n, || |_| aimd.try_acquire().unwrap().success()))
    });
    let semaphore = tokio::sync::Semaphore::new(100);
    g.bench_function("tokio_semaphore", |b| {
        b.iter_custom(|n| two_threads(n, || |_| drop(black_box(semaphore.try_acquire().unwrap()))))
    });
    let tower = |svc: &(dyn Fn() -> Box<dyn FnMut(u64)> + Sync), n| two_threads(n, svc);
    let svc = tower_concurrency_limit();
    g.bench_function("tower_concurrency_limit", |b| {
        b.iter_custom(|n| {
            tower(
                &|| {
                    let mut svc = svc.clone();
                    Box::new(move |i| tower_call(&mut svc, i))
                },
                n,
            )
        })
    });
    let svc = staunch_layer(staunch_fixed());
    g.bench_function("staunch_fixed_layer", |b| {
        b.iter_custom(|n| {
            tower(
                &|| {
                    let mut svc = svc.clone();
                    Box::new(move |i| tower_call(&mut svc, i))
                },
                n,
            )
        })
    });
    let svc = staunch_layer_static(staunch_fixed());
    g.bench_function("staunch_fixed_layer_static", |b| {
        b.iter_custom(|n| {
            tower(
                &|| {
                    let mut svc = svc.clone();
                    Box::new(move |i| tower_call(&mut svc, i))
                },
                n,
            )
        })
    });
    let svc = tower_resilience_bulkhead();
    g.bench_function("tower_resilience_bulkhead", |b| {
        b.iter_custom(|n| {
            tower(
                &|| {
                    let mut svc = svc.clone();
                    Box::new(move |i| tower_call(&mut svc, i))
                },
                n,
            )
        })
    });
    let svc = tower_resilience_adaptive();
    g.bench_function("tower_resilience_adaptive", |b| {
        b.iter_custom(|n| {
            tower(
                &|| {
                    let mut svc = svc.clone();
                    Box::new(move |i| tower_call(&mut svc, i))
                },
                n,
            )
        })
    });
    g.finish();
}

criterion_group!(benches, uncontended, contended);
criterion_main!(benches);
