//! Zero heap allocations per call on every success path of the overload policies: a slot taken
//! and freed (fixed and adaptive, by permit, async, blocking, tower), a wait in the queue that
//! ends with a slot, throttling, a rate limit, and the pipeline with all of them. Counted by a
//! counting global allocator, in a binary of its own without the libtest harness (as
//! `retry_alloc.rs`), after one warm-up call per case.

use std::alloc::System;
use std::future::Future;
use std::hint::black_box;
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use staunch::Pipeline;
use staunch::limit::{
    AdaptiveThrottle, Aimd, ConcurrencyLimit, Gradient2, LimitConfig, ThrottleConfig, Vegas,
};
use staunch::retry::CallOptions;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const N: usize = 1000;

fn allocations(f: impl FnOnce()) -> usize {
    let region = Region::new(GLOBAL);
    f();
    let change = region.change();
    change.allocations + change.reallocations
}

fn allocations_async<F: Future<Output = ()>>(rt: &tokio::runtime::Runtime, f: F) -> usize {
    rt.block_on(async {
        let region = Region::new(GLOBAL);
        f.await;
        let change = region.change();
        change.allocations + change.reallocations
    })
}

fn runtime(paused: bool) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(paused)
        .build()
        .expect("a current-thread runtime")
}

/// Runs `case` once to warm up, then counts `N` runs.
fn count(case: &mut dyn FnMut()) -> usize {
    case();
    allocations(|| {
        for _ in 0..N {
            case();
        }
    })
}

fn main() {
    assert_eq!(
        allocations(|| drop(black_box(Vec::<u8>::with_capacity(16)))),
        1,
        "the counting allocator must count"
    );
    let rt = runtime(false);
    let configs = [
        ("fixed", LimitConfig::fixed(100).with_max_queue(8)),
        ("aimd", LimitConfig::aimd(Aimd::new())),
        ("vegas", LimitConfig::vegas(Vegas::new())),
        ("gradient2", LimitConfig::gradient2(Gradient2::new())),
    ];
    let mut report = Vec::new();
    for (name, config) in configs {
        let limit = ConcurrencyLimit::new(config).unwrap();
        let permits = count(&mut || {
            limit.try_acquire().unwrap().success();
            limit.try_acquire_owned().unwrap().dropped();
            drop(limit.try_acquire().unwrap());
        });
        let blocking = count(&mut || {
            let value = limit.call_blocking(&CallOptions::new(), || Ok::<_, ()>(black_box(7)));
            assert_eq!(value, Ok(7));
        });
        let call = || async {
            let value = limit.call(|| async { Ok::<_, ()>(black_box(7)) }).await;
            assert_eq!(value, Ok(7));
        };
        rt.block_on(call());
        let async_calls = allocations_async(&rt, async {
            for _ in 0..N {
                call().await;
            }
        });
        report.push((name, permits, blocking, async_calls));
    }

    // A wait in the queue that ends with a slot (the waker is a clone, the queue preallocated).
    let paused = runtime(true);
    let limit = ConcurrencyLimit::new(
        LimitConfig::fixed(1)
            .with_max_queue(4)
            .with_max_wait(Duration::from_secs(60)),
    )
    .unwrap();
    let wait = || async {
        let held = limit.try_acquire().unwrap();
        let mut acquire = std::pin::pin!(limit.acquire());
        let queued = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(acquire.as_mut().poll(cx).is_pending())
        })
        .await;
        assert!(queued);
        drop(held); // handed to the waiter
        acquire.await.unwrap().success();
    };
    paused.block_on(wait());
    let queued = allocations_async(&paused, async {
        for _ in 0..N {
            wait().await;
        }
    });

    // Throttling (the window is allocated once) and the pipeline with a limit and a throttle.
    let throttle = AdaptiveThrottle::new(ThrottleConfig::new().with_seed(1)).unwrap();
    let throttled = count(&mut || throttle.try_acquire().unwrap().accepted());
    let pipeline = Pipeline::new()
        .throttle(throttle.clone())
        .limit(ConcurrencyLimit::new(LimitConfig::aimd(Aimd::new())).unwrap());
    let piped = || async {
        let value = pipeline.call(|| async { Ok::<_, ()>(black_box(7)) }).await;
        assert_eq!(value.ok(), Some(7));
    };
    rt.block_on(piped());
    let pipeline_calls = allocations_async(&rt, async {
        for _ in 0..N {
            piped().await;
        }
    });

    #[cfg(feature = "rate-limit")]
    let rated = {
        use staunch::limit::{RateConfig, RateLimit};
        let rate = RateLimit::new(RateConfig::per_second(1_000_000)).unwrap();
        count(&mut || rate.try_acquire().unwrap())
    };
    #[cfg(not(feature = "rate-limit"))]
    let rated = 0;

    #[cfg(feature = "tower")]
    let tower_calls = {
        use staunch::limit::ConcurrencyLimitLayer;
        use tower::{Layer, Service, ServiceExt, service_fn};
        let limit = ConcurrencyLimit::new(LimitConfig::aimd(Aimd::new())).unwrap();
        let mut svc = ConcurrencyLimitLayer::new(limit).layer(service_fn(|x: u64| async move {
            Ok::<u64, std::io::Error>(black_box(x))
        }));
        let mut call = async || {
            let ready = svc.ready().await.unwrap();
            assert_eq!(ready.call(7).await.ok(), Some(7));
        };
        rt.block_on(call());
        let layer = allocations_async(&rt, async {
            for _ in 0..N {
                call().await;
            }
        });
        // The pipeline's service, with a throttle and a limit: its Admitting state.
        let pipeline = Pipeline::new()
            .throttle(AdaptiveThrottle::new(ThrottleConfig::new()).unwrap())
            .limit(ConcurrencyLimit::new(LimitConfig::fixed(10)).unwrap());
        let mut svc = pipeline.layer().layer(service_fn(|x: u64| async move {
            Ok::<u64, std::io::Error>(black_box(x))
        }));
        let mut call = async || {
            let ready = svc.ready().await.unwrap();
            assert_eq!(ready.call(7).await.ok(), Some(7));
        };
        rt.block_on(call());
        layer
            + allocations_async(&rt, async {
                for _ in 0..N {
                    call().await;
                }
            })
    };
    #[cfg(not(feature = "tower"))]
    let tower_calls = 0;

    for (name, permits, blocking, async_calls) in report {
        eprintln!(
            "limit_alloc: {name}: permits {permits}, blocking {blocking}, async {async_calls}"
        );
        assert_eq!(permits, 0, "{name}: permits");
        assert_eq!(blocking, 0, "{name}: call_blocking");
        assert_eq!(async_calls, 0, "{name}: call");
    }
    eprintln!(
        "limit_alloc: queued {queued}, throttle {throttled}, pipeline {pipeline_calls}, rate {rated}, tower {tower_calls}"
    );
    assert_eq!(queued, 0, "a wait in the queue");
    assert_eq!(throttled, 0, "throttle");
    assert_eq!(pipeline_calls, 0, "pipeline with throttle and limit");
    assert_eq!(rated, 0, "rate limit");
    assert_eq!(tower_calls, 0, "ConcurrencyLimitLayer and PipelineLayer");
    eprintln!("limit_alloc: no allocation per call on any success path, {N} calls each");
}
