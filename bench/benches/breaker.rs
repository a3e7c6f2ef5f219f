//! The circuit breaker side by side with recloser, failsafe and tower-resilience, in one run.
//!
//! Run: `cargo bench -p staunch-bench --bench breaker -- --warm-up-time 1 --measurement-time 3`
//! and see BENCHMARKS.md for the table. Every group has a `bare` entry: the call without any
//! breaker, so overheads can be read as differences.

use std::future::Future;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use staunch::breaker::{BreakerConfig, CircuitBreaker};
use tower::{Layer as _, Service, ServiceExt as _};

type Io = std::io::Error;

const HOUR: Duration = Duration::from_secs(3600);

fn ok(x: u64) -> Result<u64, Io> {
    Ok(black_box(x))
}

fn err(_: u64) -> Result<u64, Io> {
    Err(Io::other("down"))
}

// ---- breakers under test ----------------------------------------------------------------------

fn staunch_consecutive() -> CircuitBreaker {
    CircuitBreaker::new(BreakerConfig::consecutive_failures(5).with_open_duration(HOUR)).unwrap()
}

fn staunch_count_window() -> CircuitBreaker {
    CircuitBreaker::new(BreakerConfig::failure_rate_count(0.5, 100).with_open_duration(HOUR))
        .unwrap()
}

fn staunch_time_window() -> CircuitBreaker {
    CircuitBreaker::new(
        BreakerConfig::failure_rate_time(0.5, Duration::from_secs(10)).with_open_duration(HOUR),
    )
    .unwrap()
}

fn recloser() -> recloser::Recloser {
    recloser::Recloser::custom()
        .closed_len(100)
        .open_wait(HOUR)
        .build()
}

type FailsafeConsecutive = failsafe::StateMachine<
    failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::Constant>,
    (),
>;

fn failsafe_consecutive() -> FailsafeConsecutive {
    failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::consecutive_failures(
            5,
            failsafe::backoff::constant(HOUR),
        ))
        .build()
}

/// failsafe's default policy: success rate over a time window, or consecutive failures.
fn failsafe_default() -> impl failsafe::CircuitBreaker + Send + Sync {
    failsafe::Config::new().build()
}

type TowerSvc = tower_resilience::circuitbreaker::CircuitBreaker<
    tower::util::ServiceFn<fn(u64) -> std::future::Ready<Result<u64, Io>>>,
    tower_resilience::circuitbreaker::DefaultClassifier,
>;

fn tower_resilience(consecutive: bool, fail: bool) -> TowerSvc {
    let builder = tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
        .wait_duration_in_open(HOUR)
        .sliding_window_size(100);
    let builder = if consecutive {
        builder.consecutive_failures(5)
    } else {
        builder
    };
    let f: fn(u64) -> std::future::Ready<Result<u64, Io>> = if fail {
        |x| std::future::ready(err(x))
    } else {
        |x| std::future::ready(ok(x))
    };
    builder.build().unwrap().layer(tower::service_fn(f))
}

fn staunch_layer(breaker: CircuitBreaker) -> impl Service<u64, Response = u64> + Clone {
    staunch::breaker::CircuitBreakerLayer::new(breaker)
        .layer(tower::service_fn(|x: u64| std::future::ready(ok(x))))
}

/// The layer over a breaker that lives as long as the process (`new_static`): no reference
/// count per call.
fn staunch_layer_static() -> impl Service<u64, Response = u64> + Clone {
    let breaker: &'static CircuitBreaker = Box::leak(Box::new(staunch_consecutive()));
    staunch::breaker::CircuitBreakerLayer::new_static(breaker)
        .layer(tower::service_fn(|x: u64| std::future::ready(ok(x))))
}

// ---- harness helpers --------------------------------------------------------------------------

/// Runs `iters` awaited calls inside one current-thread runtime (so runtime entry is amortised
/// and identical for every entry) and returns the time taken.
fn async_loop<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, mut f: F) -> Duration
where
    F: FnMut(u64) -> Fut,
    Fut: Future,
{
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            black_box(f(i).await);
        }
        start.elapsed()
    })
}

/// `ready().await` then `call` on one service, `iters` times, in one runtime.
fn tower_loop<S: Service<u64>>(rt: &tokio::runtime::Runtime, iters: u64, svc: &mut S) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            let ready = svc.ready().await;
            if let Ok(svc) = ready {
                black_box(svc.call(i).await.is_ok());
            }
        }
        start.elapsed()
    })
}

/// Time per call per thread with two threads calling at once; `make` gives each thread its own
/// caller (sharing one breaker).
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

/// [`two_threads`] with a clone of `svc` per thread: `ready` + `call`, polled once each.
fn tower_two_threads<S>(iters: u64, svc: &S) -> Duration
where
    S: Service<u64> + Clone + Sync,
{
    two_threads(iters, || {
        let mut svc = svc.clone();
        move |i| {
            black_box(poll_once(async {
                let svc = svc.ready().await.ok()?;
                svc.call(i).await.ok()
            }));
        }
    })
}

/// Polls a future once with a no-op waker (every inner service here is ready at once).
/// Inlined, so the future is built where it is polled: passed by value to a call, a large
/// future is copied with wide loads right after narrow stores (a store-forwarding stall that
/// once cost the tower entries ~20 ns a call).
#[inline(always)]
fn poll_once<F: Future>(f: F) -> bool {
    let f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    f.poll(&mut cx).is_ready()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

// ---- groups -----------------------------------------------------------------------------------

fn closed_success_sync(c: &mut Criterion) {
    let mut g = c.benchmark_group("closed_success_sync");
    g.bench_function("bare", |b| b.iter(|| ok(black_box(1))));
    let breaker = staunch_consecutive();
    g.bench_function("staunch", |b| {
        b.iter(|| breaker.call_blocking(|| ok(black_box(1))))
    });
    g.bench_function("staunch_permit", |b| {
        b.iter(|| {
            let permit = breaker.try_acquire().unwrap();
            let r = ok(black_box(1));
            permit.success();
            r
        })
    });
    // Disabled (resilience4j's DISABLED): admits and records nothing, on the closed paths.
    let disabled = staunch_count_window();
    disabled.disable();
    g.bench_function("staunch_disabled", |b| {
        b.iter(|| disabled.call_blocking(|| ok(black_box(1))))
    });
    // The counts clear every minute: each closed admission reads the (coarse) clock.
    let periodic = CircuitBreaker::new(
        BreakerConfig::consecutive_failures(5)
            .with_open_duration(HOUR)
            .with_count_reset_interval(Duration::from_secs(60)),
    )
    .unwrap();
    g.bench_function("staunch_count_reset_interval", |b| {
        b.iter(|| periodic.call_blocking(|| ok(black_box(1))))
    });
    let recloser = recloser();
    g.bench_function("recloser", |b| {
        b.iter(|| recloser.call(|| ok(black_box(1))))
    });
    let failsafe = failsafe_consecutive();
    g.bench_function("failsafe", |b| {
        b.iter(|| failsafe::CircuitBreaker::call(&failsafe, || ok(black_box(1))))
    });
    g.finish();
}

fn closed_success_async(c: &mut Criterion) {
    let mut g = c.benchmark_group("closed_success_async");
    let rt = runtime();
    g.bench_function("bare", |b| {
        b.iter_custom(|n| async_loop(&rt, n, |i| async move { ok(i) }))
    });
    let breaker = staunch_consecutive();
    g.bench_function("staunch", |b| {
        b.iter_custom(|n| async_loop(&rt, n, |i| breaker.call(move || async move { ok(i) })))
    });
    // The bare tower service, without a breaker: what `ready` + `call` cost by themselves.
    g.bench_function("bare_tower", |b| {
        b.iter_custom(|n| {
            tower_loop(
                &rt,
                n,
                &mut tower::service_fn(|x: u64| std::future::ready(ok(x))),
            )
        })
    });
    let layered = staunch_layer(staunch_consecutive());
    g.bench_function("staunch_tower", |b| {
        b.iter_custom(|n| tower_loop(&rt, n, &mut layered.clone()))
    });
    let layered_static = staunch_layer_static();
    g.bench_function("staunch_tower_static", |b| {
        b.iter_custom(|n| tower_loop(&rt, n, &mut layered_static.clone()))
    });
    let recloser = recloser::AsyncRecloser::from(recloser());
    g.bench_function("recloser", |b| {
        b.iter_custom(|n| async_loop(&rt, n, |i| recloser.call(async move { ok(i) })))
    });
    let failsafe = failsafe_consecutive();
    g.bench_function("failsafe", |b| {
        b.iter_custom(|n| {
            async_loop(&rt, n, |i| {
                failsafe::futures::CircuitBreaker::call(&failsafe, async move { ok(i) })
            })
        })
    });
    let tower_svc = tower_resilience(true, false);
    g.bench_function("tower_resilience", |b| {
        b.iter_custom(|n| tower_loop(&rt, n, &mut tower_svc.clone()))
    });
    g.finish();
}

fn open_rejection(c: &mut Criterion) {
    let mut g = c.benchmark_group("open_rejection");
    g.bench_function("bare", |b| b.iter(|| ok(black_box(1))));
    let breaker = staunch_consecutive();
    breaker.force_open();
    let tripped = staunch_consecutive();
    for _ in 0..5 {
        let _ = tripped.call_blocking(|| err(0));
    }
    assert!(tripped.try_acquire().is_err());
    g.bench_function("staunch", |b| {
        b.iter(|| tripped.call_blocking(|| ok(black_box(1))))
    });
    g.bench_function("staunch_forced", |b| {
        b.iter(|| breaker.call_blocking(|| ok(black_box(1))))
    });
    // Its period's timer ticks once a second (for a 1 h period) while the rejections are
    // measured.
    let automatic = staunch_bench::tripped_automatic(HOUR);
    g.bench_function("staunch_automatic", |b| {
        b.iter(|| automatic.call_blocking(|| ok(black_box(1))))
    });
    let recloser = recloser();
    for _ in 0..200 {
        let _ = recloser.call(|| err(0));
    }
    assert!(matches!(
        recloser.call(|| ok(0)),
        Err(recloser::Error::Rejected)
    ));
    g.bench_function("recloser", |b| {
        b.iter(|| recloser.call(|| ok(black_box(1))))
    });
    let failsafe = failsafe_consecutive();
    for _ in 0..5 {
        let _ = failsafe::CircuitBreaker::call(&failsafe, || err(0));
    }
    assert!(!failsafe::CircuitBreaker::is_call_permitted(&failsafe));
    g.bench_function("failsafe", |b| {
        b.iter(|| failsafe::CircuitBreaker::call(&failsafe, || ok(black_box(1))))
    });
    let rt = runtime();
    let tower_svc = tower_resilience(true, true);
    rt.block_on(async {
        for _ in 0..5 {
            let _ = tower_svc.clone().oneshot(0).await;
        }
    });
    g.bench_function("tower_resilience", |b| {
        b.iter_custom(|n| tower_loop(&rt, n, &mut tower_svc.clone()))
    });
    g.finish();
}

fn two_threads_closed_success(c: &mut Criterion) {
    let mut g = c.benchmark_group("two_threads_closed_success");
    g.bench_function("bare", |b| {
        b.iter_custom(|n| two_threads(n, || |i| drop(black_box(ok(i)))))
    });
    let breaker = staunch_consecutive();
    g.bench_function("staunch", |b| {
        b.iter_custom(|n| two_threads(n, || |i| drop(black_box(breaker.call_blocking(|| ok(i))))))
    });
    // A breaker per thread, nothing shared: the floor for `staunch` with two threads running.
    g.bench_function("staunch_unshared", |b| {
        b.iter_custom(|n| {
            two_threads(n, || {
                let breaker = staunch_consecutive();
                move |i| drop(black_box(breaker.call_blocking(|| ok(i))))
            })
        })
    });
    g.bench_function("staunch_permit", |b| {
        b.iter_custom(|n| {
            two_threads(n, || {
                |i| {
                    let permit = breaker.try_acquire().unwrap();
                    let r = ok(i);
                    permit.success();
                    drop(black_box(r));
                }
            })
        })
    });
    let recloser = recloser();
    g.bench_function("recloser", |b| {
        b.iter_custom(|n| two_threads(n, || |i| drop(black_box(recloser.call(|| ok(i))))))
    });
    let failsafe = failsafe_consecutive();
    g.bench_function("failsafe", |b| {
        b.iter_custom(|n| {
            two_threads(n, || {
                |i| {
                    drop(black_box(failsafe::CircuitBreaker::call(&failsafe, || {
                        ok(i)
                    })))
                }
            })
        })
    });
    // The tower services are polled once with a no-op waker: their inner service is ready at
    // once, and a runtime per thread would only add the same constant to both.
    let bare_tower = tower::service_fn(|x: u64| std::future::ready(ok(x)));
    g.bench_function("bare_tower", |b| {
        b.iter_custom(|n| tower_two_threads(n, &bare_tower))
    });
    let layered = staunch_layer(staunch_consecutive());
    g.bench_function("staunch_tower", |b| {
        b.iter_custom(|n| tower_two_threads(n, &layered))
    });
    let layered_static = staunch_layer_static();
    g.bench_function("staunch_tower_static", |b| {
        b.iter_custom(|n| tower_two_threads(n, &layered_static))
    });
    let tower_svc = tower_resilience(true, false);
    g.bench_function("tower_resilience", |b| {
        b.iter_custom(|n| tower_two_threads(n, &tower_svc))
    });
    g.finish();
}

fn rate_window_closed_success(c: &mut Criterion) {
    let mut g = c.benchmark_group("rate_window_closed_success");
    g.bench_function("bare", |b| b.iter(|| ok(black_box(1))));
    let count = staunch_count_window();
    g.bench_function("staunch_count", |b| {
        b.iter(|| count.call_blocking(|| ok(black_box(1))))
    });
    // One failure per 100 calls keeps a failure in the window at all times: every outcome then
    // takes the window lock (the clean-window shortcut never applies).
    let mixed = staunch_count_window();
    g.bench_function("staunch_count_1pct_failures", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            mixed.call_blocking(|| {
                if i.is_multiple_of(100) {
                    err(i)
                } else {
                    ok(black_box(i))
                }
            })
        })
    });
    let time = staunch_time_window();
    g.bench_function("staunch_time", |b| {
        b.iter(|| time.call_blocking(|| ok(black_box(1))))
    });
    let recloser = recloser();
    g.bench_function("recloser", |b| {
        b.iter(|| recloser.call(|| ok(black_box(1))))
    });
    let failsafe = failsafe_default();
    g.bench_function("failsafe", |b| {
        b.iter(|| failsafe::CircuitBreaker::call(&failsafe, || ok(black_box(1))))
    });
    let rt = runtime();
    let tower_svc = tower_resilience(false, false);
    g.bench_function("tower_resilience", |b| {
        b.iter_custom(|n| tower_loop(&rt, n, &mut tower_svc.clone()))
    });
    g.finish();
}

criterion_group!(
    benches,
    closed_success_sync,
    closed_success_async,
    open_rejection,
    two_threads_closed_success,
    rate_window_closed_success
);
criterion_main!(benches);
