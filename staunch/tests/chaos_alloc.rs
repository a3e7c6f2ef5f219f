//! Heap allocations per call through a chaos policy, counted by a global allocator: the proof
//! that a policy that is off (or on with nothing to inject) allocates nothing, through the
//! closure API, the tower service and inside a pipeline (`Pipeline::call_with_chaos`).
//!
//! As in `retry_alloc.rs`: `stats_alloc` counts every thread of the process, so this binary has
//! no harness (`harness = false`) and makes its measurements in turn on its only thread, on a
//! current-thread runtime, each case warmed up first. It holds with every feature on:
//! `cargo test -p staunch --all-features --test chaos_alloc`.

use std::alloc::System;
use std::future::Future;
use std::hint::black_box;
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use staunch::Pipeline;
use staunch::chaos::{Chaos, ChaosConfig};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Calls counted per case, after one warm-up call.
const N: usize = 1000;

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

/// A policy with every kind configured, on or off.
fn policy(
    enabled: bool,
    rate: f64,
) -> Chaos<impl Fn() -> std::io::Error + Clone, impl Fn() -> u64 + Clone> {
    Chaos::new(
        ChaosConfig::new()
            .with_error(rate, || std::io::Error::other("injected"))
            .with_delay(rate, Duration::from_millis(5))
            .with_result(rate, || 0)
            .with_enabled(enabled)
            .with_name("alloc"),
    )
    .expect("a valid config")
}

/// Allocations over `N` calls of `call`, after one warm-up call.
fn count<Fut: Future<Output = ()>>(rt: &tokio::runtime::Runtime, call: impl Fn() -> Fut) -> usize {
    rt.block_on(call());
    allocations_async(rt, async {
        for _ in 0..N {
            call().await;
        }
    })
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let op = || async { Ok::<u64, std::io::Error>(black_box(7)) };

    let mut rows = Vec::new();
    for (name, chaos) in [
        ("off", policy(false, 1.0)),
        ("on, rates 0", policy(true, 0.0)),
    ] {
        let closure = count(&rt, || async {
            assert_eq!(chaos.call(op).await.ok(), Some(7));
        });
        rows.push((format!("Chaos::call, {name}"), closure));

        let pipeline = Pipeline::new();
        let piped = count(&rt, || async {
            assert_eq!(pipeline.call(|| chaos.call(op)).await.ok(), Some(7));
        });
        rows.push((format!("Pipeline::call around Chaos::call, {name}"), piped));
        let facade = count(&rt, || async {
            assert_eq!(pipeline.call_with_chaos(&chaos, op).await.ok(), Some(7));
        });
        rows.push((format!("Pipeline::call_with_chaos, {name}"), facade));

        #[cfg(feature = "tower")]
        {
            use staunch::chaos::ChaosLayer;
            use tower::{Layer, Service, ServiceExt, service_fn};

            let mut service =
                ChaosLayer::new(chaos.clone()).layer(service_fn(|request: u64| async move {
                    Ok::<u64, std::io::Error>(black_box(request))
                }));
            let mut call = async || {
                let ready = service.ready().await.expect("always ready");
                assert_eq!(ready.call(black_box(7)).await.ok(), Some(7));
            };
            rt.block_on(call());
            let tower = allocations_async(&rt, async {
                for _ in 0..N {
                    call().await;
                }
            });
            rows.push((format!("ChaosService, {name}"), tower));
        }
    }

    // The counter sees an allocation: an injected delay allocates its timer.
    let on = policy(true, 0.0);
    on.switch().set_delay_rate(1.0).expect("a valid rate");
    let paused = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a paused runtime");
    let delayed = count(&paused, || async {
        assert_eq!(on.call(op).await.ok(), Some(7));
    });
    assert!(delayed >= N, "the allocator must count: {delayed}");

    for (name, allocations) in &rows {
        eprintln!("heap allocations over {N} calls: {name}: {allocations}");
    }
    for (name, allocations) in rows {
        assert_eq!(allocations, 0, "{name}");
    }
    eprintln!("chaos_alloc: ok, no heap allocation in {N} calls of any case");
}
