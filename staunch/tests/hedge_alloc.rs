//! Heap allocations per hedged call, counted by a global allocator: a call whose first attempt
//! answers before the delay allocates nothing, whether it answers at its first poll (no timer)
//! or after waiting (a timer armed and dropped), with a fixed or an adaptive delay, through the
//! closure API and the tower layer. (A hedge, when one is sent, allocates its attempt's future;
//! see `hedge/race.rs`.)
//!
//! As `retry_alloc.rs`: `stats_alloc` counts every thread, so this binary has no harness and
//! measures on the process's only thread; each case is warmed up, then `N` calls are counted.

use std::alloc::System;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use staunch::hedge::{Hedge, HedgeConfig, HedgeDelay};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Calls counted per case, after one warm-up call.
const N: usize = 1000;

/// Allocations made while the future runs, counted inside `block_on`.
fn allocations_async<F: Future<Output = ()>>(rt: &tokio::runtime::Runtime, f: F) -> usize {
    rt.block_on(async {
        let region = Region::new(GLOBAL);
        f.await;
        let change = region.change();
        change.allocations + change.reallocations
    })
}

/// Ready at its second poll: a call that waits, as every network call does, but no longer
/// than the delay.
struct PendingOnce(Option<u64>, bool);

impl Future for PendingOnce {
    type Output = Result<u64, std::io::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if !self.1 {
            self.1 = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(Ok(self.0.take().unwrap_or(0)))
    }
}

fn hedge(delay: HedgeDelay) -> Hedge {
    Hedge::new(HedgeConfig::new(delay).with_max_attempts(3)).expect("valid config")
}

fn main() {
    // The counter sees an allocation made on this thread.
    let rt_probe = Region::new(GLOBAL);
    drop(black_box(Vec::<u8>::with_capacity(16)));
    assert_eq!(
        rt_probe.change().allocations,
        1,
        "the counting allocator must count"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let fixed = hedge(HedgeDelay::fixed(Duration::from_millis(50)));
    let adaptive = hedge(HedgeDelay::percentile(95.0).with_max(Duration::from_millis(50)));
    let mut counts = Vec::new();

    for (name, policy) in [("fixed", &fixed), ("adaptive", &adaptive)] {
        let at_once = || async {
            let value = policy
                .call(|| std::future::ready(Ok::<u64, std::io::Error>(black_box(7))))
                .await;
            assert_eq!(value.ok(), Some(7));
        };
        rt.block_on(at_once());
        counts.push((
            format!("Hedge::call, {name} delay, answered at once"),
            allocations_async(&rt, async {
                for _ in 0..N {
                    at_once().await;
                }
            }),
        ));

        let after_waiting = || async {
            let value = policy.call(|| PendingOnce(Some(black_box(7)), false)).await;
            assert_eq!(value.ok(), Some(7));
        };
        rt.block_on(after_waiting());
        counts.push((
            format!("Hedge::call, {name} delay, answered after waiting"),
            allocations_async(&rt, async {
                for _ in 0..N {
                    after_waiting().await;
                }
            }),
        ));
    }

    #[cfg(feature = "tower")]
    {
        use staunch::hedge::HedgeLayer;
        use tower::{Layer, Service, ServiceExt, service_fn};

        let at_once =
            service_fn(|request: u64| async move { Ok::<u64, std::io::Error>(black_box(request)) });
        let waiting = service_fn(|request: u64| PendingOnce(Some(black_box(request)), false));
        let mut at_once = HedgeLayer::new(fixed.clone()).layer(at_once);
        let mut waiting = HedgeLayer::new(fixed.clone()).layer(waiting);
        let mut call_at_once = async || {
            let ready = at_once.ready().await.expect("always ready");
            assert_eq!(ready.call(black_box(7)).await.ok(), Some(7));
        };
        rt.block_on(call_at_once());
        counts.push((
            "HedgeService, answered at once".to_owned(),
            allocations_async(&rt, async {
                for _ in 0..N {
                    call_at_once().await;
                }
            }),
        ));
        let mut call_waiting = async || {
            let ready = waiting.ready().await.expect("always ready");
            assert_eq!(ready.call(black_box(7)).await.ok(), Some(7));
        };
        rt.block_on(call_waiting());
        counts.push((
            "HedgeService, answered after waiting".to_owned(),
            allocations_async(&rt, async {
                for _ in 0..N {
                    call_waiting().await;
                }
            }),
        ));
    }

    for (name, count) in &counts {
        eprintln!("heap allocations over {N} calls: {name}: {count}");
    }
    for (name, count) in counts {
        assert_eq!(count, 0, "{name}");
    }
    eprintln!("hedge_alloc: ok, no heap allocation in {N} calls of any case");
}
