//! Heap allocations per retried call, counted by a global allocator: the proof that a call
//! whose first attempt succeeds allocates nothing (issue 2, "zero heap allocations per call").
//!
//! The counting allocator is `stats_alloc`'s wrapper around the system allocator (its
//! `unsafe impl GlobalAlloc` lives in that crate; this workspace forbids `unsafe`). It counts
//! every thread of the process, so this test binary has no harness (`harness = false` in
//! Cargo.toml): `main` makes every measurement in turn on the process's only thread, on
//! current-thread runtimes. (Under libtest, the harness's main thread allocates now and then
//! while the test thread counts: 4 stray allocations in about one run of five.) It fails by
//! panicking, so `cargo test` reports the target as failed. Each case is warmed up first
//! (lazy one-time setup such as a runtime's first timer or a `tracing` call site may
//! allocate, and so does building a policy's `metrics` keys once per thread), then `N` calls
//! are counted. It holds with every feature on: `cargo test -p staunch --all-features`.

use std::alloc::System;
use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use staunch::backoff::{Backoff, Jitter};
use staunch::{Retry, RetryConfig};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Calls counted per case, after one warm-up call.
const N: usize = 1000;

/// Allocations (and reallocations) made while `f` runs.
fn allocations(f: impl FnOnce()) -> usize {
    let region = Region::new(GLOBAL);
    f();
    let change = region.change();
    change.allocations + change.reallocations
}

/// Allocations made while the future runs, counted inside `block_on` so that the runtime's own
/// entry and exit are not counted.
fn allocations_async<F: Future<Output = ()>>(rt: &tokio::runtime::Runtime, f: F) -> usize {
    rt.block_on(async {
        let region = Region::new(GLOBAL);
        f.await;
        let change = region.change();
        change.allocations + change.reallocations
    })
}

fn current_thread(paused: bool) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(paused)
        .build()
        .expect("a current-thread runtime")
}

fn policy() -> Retry {
    Retry::new(
        RetryConfig::new()
            .with_max_attempts(3)
            .with_backoff(Backoff::exponential(Duration::from_millis(10))),
    )
    .expect("valid config")
}

fn main() {
    retry_success_paths_make_no_heap_allocation();
    eprintln!("retry_alloc: ok, no heap allocation in {N} calls of any case");
}

fn retry_success_paths_make_no_heap_allocation() {
    // The counter sees an allocation made on this thread.
    assert_eq!(
        allocations(|| drop(black_box(Vec::<u8>::with_capacity(16)))),
        1,
        "the counting allocator must count"
    );

    let retry = policy();

    // Async, on a current-thread runtime, with a future that is ready at once.
    let rt = current_thread(false);
    let call = || async {
        let value = retry
            .call(|| async { Ok::<u64, &'static str>(black_box(7)) })
            .await;
        assert_eq!(value.ok(), Some(7));
    };
    rt.block_on(call());
    let async_calls = allocations_async(&rt, async {
        for _ in 0..N {
            call().await;
        }
    });

    // A policy named with an owned string (a name read from configuration): the name is shared,
    // and with `metrics` its keys are cached like a literal's.
    let owned = policy().with_name(format!("tenant-{}", black_box(7)));
    let owned_call = || async {
        let value = owned
            .call(|| async { Ok::<u64, &'static str>(black_box(7)) })
            .await;
        assert_eq!(value.ok(), Some(7));
    };
    rt.block_on(owned_call());
    let owned_calls = allocations_async(&rt, async {
        for _ in 0..N {
            owned_call().await;
        }
    });

    // Blocking.
    let blocking = || {
        let value = retry.call_blocking(|| Ok::<u64, &'static str>(black_box(7)));
        assert_eq!(value.ok(), Some(7));
    };
    blocking();
    let blocking_calls = allocations(|| {
        for _ in 0..N {
            blocking();
        }
    });

    // The tower service, called as tower's `ServiceExt::ready` then `call`.
    #[cfg(feature = "tower")]
    let tower_calls = {
        use staunch::retry::RetryLayer;
        use tower::{Layer, Service, ServiceExt, service_fn};

        let mut service = RetryLayer::new(policy()).layer(service_fn(|request: u64| async move {
            Ok::<u64, std::io::Error>(black_box(request))
        }));
        let mut call = async || {
            let ready = service.ready().await.expect("always ready");
            let value = ready.call(black_box(7)).await;
            assert_eq!(value.ok(), Some(7));
        };
        rt.block_on(call());
        allocations_async(&rt, async {
            for _ in 0..N {
                call().await;
            }
        })
    };

    // Two failures, then a success, with seeded full jitter, in paused time (the sleeps are
    // tokio timers, auto-advanced).
    let jittered = Retry::new(
        RetryConfig::new().with_max_attempts(3).with_backoff(
            Backoff::exponential(Duration::from_millis(10))
                .with_jitter(Jitter::Full)
                .with_seed(42),
        ),
    )
    .expect("valid config");
    let paused = current_thread(true);
    let retried = || async {
        let attempt = Cell::new(0);
        let value = jittered
            .call(|| {
                attempt.set(attempt.get() + 1);
                let outcome = if attempt.get() < 3 {
                    Err("busy")
                } else {
                    Ok(black_box(7u64))
                };
                async move { outcome }
            })
            .await;
        assert_eq!((value.ok(), attempt.get()), (Some(7), 3));
    };
    paused.block_on(retried());
    let retried_calls = allocations_async(&paused, async {
        for _ in 0..N {
            retried().await;
        }
    });

    eprintln!(
        "heap allocations over {N} calls: Retry::call {async_calls}, call_blocking \
         {blocking_calls}, retried twice then successful {retried_calls}"
    );
    eprintln!("heap allocations over {N} calls: Retry::call with an owned name {owned_calls}");
    assert_eq!(async_calls, 0, "Retry::call");
    assert_eq!(owned_calls, 0, "Retry::call with an owned name");
    assert_eq!(blocking_calls, 0, "Retry::call_blocking");
    #[cfg(feature = "tower")]
    {
        eprintln!("heap allocations over {N} calls: RetryService {tower_calls}");
        assert_eq!(tower_calls, 0, "RetryService");
    }
    assert_eq!(retried_calls, 0, "retried call");
}
