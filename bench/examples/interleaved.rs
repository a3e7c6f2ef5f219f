//! Paired measurements: staunch and failsafe in short interleaved slices, in one process.
//!
//! Run: `cargo run --release -p staunch-bench --example interleaved`
//!
//! Criterion (`benches/breaker.rs`, where the targets are measured) runs one entry after
//! another, so when the VM changes speed between two entries their ratio moves (see
//! BENCHMARKS.md). Here every contender runs for one slice of calls in turn, many rounds over,
//! and each round's ratio is taken between slices a few milliseconds apart: the distribution
//! of those ratios shows what the speed changes do to a comparison, and how often.

// The printed table is the example's output.
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use staunch::breaker::{BreakerConfig, CircuitBreaker};

type Io = std::io::Error;

const SLICE: u64 = 200_000;
const ROUNDS: usize = 200;
const HOUR: Duration = Duration::from_secs(3600);

fn ok(x: u64) -> Result<u64, Io> {
    Ok(black_box(x))
}

fn err(_: u64) -> Result<u64, Io> {
    Err(Io::other("down"))
}

/// Nanoseconds per call of `f` over one slice.
fn slice(mut f: impl FnMut(u64)) -> f64 {
    let start = Instant::now();
    for i in 0..SLICE {
        f(i);
    }
    start.elapsed().as_nanos() as f64 / SLICE as f64
}

fn failsafe() -> impl failsafe::CircuitBreaker {
    failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::consecutive_failures(
            5,
            failsafe::backoff::constant(HOUR),
        ))
        .build()
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 10], v[v.len() / 2], v[v.len() * 9 / 10])
}

fn main() {
    let closed = CircuitBreaker::new(BreakerConfig::consecutive_failures(5)).unwrap();
    let open = CircuitBreaker::new(BreakerConfig::consecutive_failures(5).with_open_duration(HOUR))
        .unwrap();
    for _ in 0..5 {
        let _ = open.call_blocking(|| err(0));
    }
    let automatic = staunch_bench::tripped_automatic(HOUR);
    let fs_closed = failsafe();
    let fs_open = failsafe();
    for _ in 0..5 {
        let _ = failsafe::CircuitBreaker::call(&fs_open, || err(0));
    }
    assert!(open.try_acquire().is_err());
    assert!(!failsafe::CircuitBreaker::is_call_permitted(&fs_open));

    let mut times: [Vec<f64>; 7] = Default::default();
    let mut closed_ratio = Vec::new();
    let mut open_ratio = Vec::new();
    let mut automatic_ratio = Vec::new();
    for _ in 0..ROUNDS {
        let t = [
            slice(|i| drop(black_box(ok(i)))),
            slice(|i| drop(black_box(closed.call_blocking(|| ok(i))))),
            slice(|i| {
                drop(black_box(failsafe::CircuitBreaker::call(
                    &fs_closed,
                    || ok(i),
                )))
            }),
            slice(|i| drop(black_box(open.call_blocking(|| ok(i))))),
            slice(|i| {
                drop(black_box(failsafe::CircuitBreaker::call(&fs_open, || {
                    ok(i)
                })))
            }),
            slice(|_| {
                black_box(Instant::now());
            }),
            slice(|i| drop(black_box(automatic.call_blocking(|| ok(i))))),
        ];
        for (all, t) in times.iter_mut().zip(t) {
            all.push(t);
        }
        // Overhead over this round's bare slice, as the targets are written.
        let bare = t[0];
        closed_ratio.push((t[2] - bare) / (t[1] - bare).max(0.01));
        open_ratio.push((t[4] - bare) / (t[3] - bare).max(0.01));
        automatic_ratio.push((t[4] - bare) / (t[6] - bare).max(0.01));
    }
    let names = [
        "bare call",
        "staunch closed (call_blocking)",
        "failsafe closed",
        "staunch open rejection",
        "failsafe open rejection",
        "Instant::now()",
        "staunch open, automatic half-open",
    ];
    println!("ns per call over {ROUNDS} rounds of {SLICE}-call slices: p10 / median / p90");
    for (name, all) in names.iter().zip(times) {
        let (lo, mid, hi) = percentiles(all);
        println!("  {name:34} {lo:7.2} {mid:7.2} {hi:7.2}");
    }
    println!("failsafe's overhead / staunch's, per round: p10 / median / p90");
    for (name, ratios) in [
        ("closed", closed_ratio),
        ("open", open_ratio),
        ("open, automatic half-open", automatic_ratio),
    ] {
        let (lo, mid, hi) = percentiles(ratios);
        println!("  {name:34} {lo:6.1}x {mid:6.1}x {hi:6.1}x");
    }
}
