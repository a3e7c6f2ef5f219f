//! Paired measurements of a hedged call's success path: staunch's hedge, staunch's retry and
//! `tower::hedge` in short interleaved slices, in one process.
//!
//! Run: `cargo run --release -p staunch-bench --example hedge_paired`
//!
//! As `interleaved.rs` does for the breaker: criterion (`benches/hedge.rs`) runs one entry
//! after another, and on a shared VM a ratio of two entries moves with the machine's speed
//! between them. Here each contender runs one slice of calls in turn, many rounds over, and
//! each round's ratio is taken between slices a few milliseconds apart.

// The printed table is the example's output.
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::io;
use std::time::{Duration, Instant};

use staunch::backoff::Backoff;
use staunch::hedge::{Hedge, HedgeConfig, HedgeDelay, HedgeLayer};
use staunch::retry::RetryLayer;
use staunch::{Retry, RetryConfig};
use staunch_bench::{AfterWaiting, tower_hedge};
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt, service_fn};

const SLICE: u64 = 20_000;
const ROUNDS: usize = 200;
const DELAY: Duration = Duration::from_millis(50);

/// Nanoseconds per call of `call` over one slice, inside one `block_on`. Out of line, so that
/// each contender's loop is a function of its own, compiled alike whatever else `main` runs.
#[inline(never)]
fn slice<E>(rt: &Runtime, mut call: impl AsyncFnMut() -> Result<u64, E>) -> f64 {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..SLICE {
            black_box(call().await.ok());
        }
        start.elapsed().as_nanos() as f64 / SLICE as f64
    })
}

fn at_once() -> std::future::Ready<Result<u64, io::Error>> {
    std::future::ready(Ok(black_box(1)))
}

fn after_waiting() -> AfterWaiting {
    AfterWaiting::default()
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 10], v[v.len() / 2], v[v.len() * 9 / 10])
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let retry = Retry::new(
        RetryConfig::new()
            .with_max_attempts(2)
            .with_backoff(Backoff::exponential(Duration::from_millis(10))),
    )
    .expect("a valid config");
    let fixed = Hedge::new(HedgeConfig::new(HedgeDelay::fixed(DELAY))).expect("a valid config");
    let adaptive = Hedge::new(HedgeConfig::new(
        HedgeDelay::percentile(95.0).with_max(DELAY),
    ))
    .expect("a valid config");
    let service =
        service_fn(|request: u64| std::future::ready(Ok::<_, io::Error>(black_box(request))));
    let mut bare_svc = service;
    let mut retry_svc = RetryLayer::new(retry.clone()).layer(service);
    let mut hedge_svc = HedgeLayer::new(fixed.clone()).layer(service);
    let mut tower_svc = tower_hedge(service);

    let names = [
        "bare call",
        "staunch Retry::call",
        "staunch Hedge::call, fixed",
        "staunch Hedge::call, adaptive",
        "tower: bare service_fn",
        "tower: staunch RetryLayer",
        "tower: staunch HedgeLayer",
        "tower: tower::hedge::Hedge",
        "after waiting: bare call",
        "after waiting: Retry::call",
        "after waiting: Hedge::call, fixed",
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); 5];
    for _ in 0..ROUNDS {
        let t = [
            slice(&rt, async || at_once().await),
            slice(&rt, async || retry.call(at_once).await),
            slice(&rt, async || fixed.call(at_once).await),
            slice(&rt, async || adaptive.call(at_once).await),
            slice(&rt, async || {
                bare_svc.ready().await?.call(black_box(7)).await
            }),
            slice(&rt, async || {
                retry_svc.ready().await?.call(black_box(7)).await
            }),
            slice(&rt, async || {
                hedge_svc.ready().await?.call(black_box(7)).await
            }),
            slice(&rt, async || {
                tower_svc.ready().await?.call(black_box(7)).await
            }),
            slice(&rt, async || after_waiting().await),
            slice(&rt, async || retry.call(after_waiting).await),
            slice(&rt, async || fixed.call(after_waiting).await),
        ];
        for (all, t) in times.iter_mut().zip(t) {
            all.push(t);
        }
        ratios[0].push(t[2] / t[1]);
        ratios[1].push(t[3] / t[1]);
        ratios[2].push(t[6] / t[5]);
        ratios[3].push(t[6] / t[7]);
        ratios[4].push(t[10] / t[9]);
    }
    println!("ns per call over {ROUNDS} rounds of {SLICE}-call slices: p10 / median / p90");
    for (name, all) in names.iter().zip(times) {
        let (lo, mid, hi) = percentiles(all);
        println!("  {name:32} {lo:8.2} {mid:8.2} {hi:8.2}");
    }
    println!("time ratios, per round: p10 / median / p90");
    for (name, ratios) in [
        "Hedge::call, fixed / Retry::call",
        "Hedge::call, adaptive / Retry::call",
        "HedgeLayer / RetryLayer",
        "HedgeLayer / tower::hedge::Hedge",
        "after waiting: Hedge::call / Retry::call",
    ]
    .into_iter()
    .zip(ratios)
    {
        let (lo, mid, hi) = percentiles(ratios);
        println!("  {name:38} {lo:6.2}x {mid:6.2}x {hi:6.2}x");
    }
}
