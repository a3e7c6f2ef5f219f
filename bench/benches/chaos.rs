//! A call through a chaos policy that is off, beside the bare call: the price of leaving fault
//! injection compiled into a service. Also on with every rate at 0 (a draw, nothing injected).
//!
//! Same harness as `retry.rs`: one `block_on` of a current-thread runtime per criterion sample,
//! the calls made back to back inside it (`iter_custom`); the operation is
//! `std::future::ready(Ok(black_box(1u64)))`, each result reduced to `.ok()` before
//! `black_box`. The policy has every kind configured (an error, a delay, a substitute) so that
//! nothing is left out of its type.
//!
//! Run with `cargo bench -p staunch-bench --bench chaos`; BENCHMARKS.md has the numbers.

use std::future::Future;
use std::hint::black_box;
use std::io;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use staunch::chaos::{Chaos, ChaosConfig, ChaosLayer};
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt, service_fn};

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
}

/// Every kind configured at `rate`, on or off.
fn policy(
    enabled: bool,
    rate: f64,
) -> Chaos<impl Fn() -> io::Error + Clone, impl Fn() -> u64 + Clone> {
    Chaos::new(
        ChaosConfig::new()
            .with_error(rate, || io::Error::other("injected"))
            .with_delay(rate, Duration::from_millis(100))
            .with_result(rate, || 0)
            .with_enabled(enabled),
    )
    .expect("a valid config")
}

/// The operation every contender calls.
#[inline]
fn op() -> impl Future<Output = Result<u64, io::Error>> {
    std::future::ready(Ok(black_box(1)))
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

fn chaos(c: &mut Criterion) {
    let rt = runtime();
    let off = policy(false, 1.0);
    let on_zero = policy(true, 0.0);
    let mut g = c.benchmark_group("chaos");
    g.bench_function("bare", |b| {
        b.iter_custom(|iters| time_async(&rt, iters, async || op().await));
    });
    g.bench_function("staunch_chaos_off", |b| {
        b.iter_custom(|iters| time_async(&rt, iters, async || off.call(op).await));
    });
    g.bench_function("staunch_chaos_on_zero", |b| {
        b.iter_custom(|iters| time_async(&rt, iters, async || on_zero.call(op).await));
    });

    let service =
        service_fn(|request: u64| std::future::ready(Ok::<_, io::Error>(black_box(request))));
    g.bench_function("tower_bare", |b| {
        let mut svc = service;
        b.iter_custom(|iters| {
            time_async(&rt, iters, async || {
                svc.ready().await?.call(black_box(7)).await
            })
        });
    });
    g.bench_function("tower_staunch_chaos_off", |b| {
        let mut svc = ChaosLayer::new(off.clone()).layer(service);
        b.iter_custom(|iters| {
            time_async(&rt, iters, async || {
                svc.ready().await?.call(black_box(7)).await
            })
        });
    });
    g.finish();
}

criterion_group!(benches, chaos);
criterion_main!(benches);
