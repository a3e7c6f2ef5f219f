//! The streaming latency estimate behind an adaptive hedge delay.
//!
//! # Why a log-bucketed histogram with halving
//!
//! Every call of a dependency records a latency and reads the delay, on many threads at once,
//! so both must be a few atomic operations with no lock and no allocation, in memory fixed at
//! construction. The candidates:
//!
//! - A ring of the last `N` samples is exact over its window, but a percentile needs a copy and
//!   a selection (`O(N)`, ~1 µs for 256 samples), and writers race on the ring's cursor.
//! - A t-digest or a GK sketch is compact and accurate, but its merges need a lock.
//! - A histogram with fixed log-linear buckets (HdrHistogram's layout, as `tower::hedge` uses
//!   behind a mutex) records with one `fetch_add`; its relative error is bounded by the bucket
//!   width, and what latency needs is relative accuracy (5 ms against 5.2 ms, 1 s against
//!   1.04 s), not absolute.
//!
//! So: 16 buckets per power of two of microseconds, from 1 µs to ~134 s (values above land in
//! the last bucket), 384 `AtomicU32` counters (1.5 KiB) per histogram. A percentile reports its
//! bucket's midpoint, within 1/32 (3.1%) of the true sample quantile.
//!
//! # Censored samples: Kaplan–Meier
//!
//! The samples are first attempts' latencies, but when a hedge wins, the first attempt is
//! dropped: all that is known is that it would have taken longer than it had run. Dropping such
//! samples would lose exactly the slow ones, and the estimate would spiral down (a lower delay,
//! more hedges won, fewer slow samples, a lower delay). Recording the time run instead is a
//! lower bound: the estimate could only creep back up by a hedge's latency at a time. So a
//! second histogram holds those right-censored samples, and the percentile is read from the
//! Kaplan–Meier estimate of the distribution over both: walking the buckets in order, the
//! survival falls by `events / at risk` in each, and censored samples leave the risk set after
//! their bucket (events first on a tie). A hedge's start does not depend on the first attempt's
//! latency, so the censoring is independent and the estimate consistent: the dropped attempts
//! count as slower than they ran, and the few slow first attempts that still answer first say
//! how slow. When the censored samples leave too little to reach the percentile (everything
//! slow was cut short), the percentile is above what was seen, and the delay is the ceiling.
//! Without censored samples, this is the plain nearest-rank percentile.
//!
//! Old samples fade by count, not time: once the counts weigh two [`HALF_LIFE`]s, every count is
//! halved (rounding alternately up and down, so that no bias builds), so a sample's weight
//! halves with each `HALF_LIFE` or so newer ones and the estimate follows a change within a few
//! thousand calls. No clock is read to record.
//!
//! Recording is one atomic increment of the sample's bucket, for one latency in [`SAMPLE`] once
//! the estimate has `min_samples` (a random sample of the latencies is as good an estimate, and
//! costs the calls that answer at once a quarter as much). Reading the percentile walks the
//! buckets (~800 loads), too much for every call: the walk runs once every [`REFRESH`] samples
//! recorded on a thread (a thread-local count, so that no shared counter bounces between cores),
//! guarded by a flag that others skip rather than wait on, and publishes the clamped delay in
//! one atomic that every call loads. Until the estimate has `min_samples`, every latency is
//! recorded, and a shared count of them decides the first walk.

use std::fmt;
use std::time::Duration;

use crate::loom::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Sub-buckets per power of two: 2^4 = 16, for a bucket width of at most 1/16 of its values.
#[cfg(not(loom))]
const SUB_BITS: u32 = 4;
/// The highest power of two with buckets of its own: 2^27 µs (134 s) and above share the last.
#[cfg(not(loom))]
const MAX_EXP: u32 = 26;
/// Under loom, a tiny histogram: the interleavings of 384 counters would never end.
#[cfg(loom)]
const SUB_BITS: u32 = 1;
#[cfg(loom)]
const MAX_EXP: u32 = 2;

const SUB: u64 = 1 << SUB_BITS;
/// The number of buckets: the values below `SUB` one each, then `SUB` per power of two.
const BUCKETS: usize = ((MAX_EXP - SUB_BITS + 2) as u64 * SUB) as usize;

/// Samples after which every count is halved.
#[cfg(not(loom))]
pub(crate) const HALF_LIFE: u64 = 1024;
#[cfg(loom)]
pub(crate) const HALF_LIFE: u64 = 2;

/// Samples between two recomputations of the published delay: the walk costs about a
/// microsecond, a few nanoseconds per sample at this rate, and a quarter of a half-life of new
/// samples moves a percentile little.
#[cfg(not(loom))]
pub(crate) const REFRESH: u64 = 256;

/// Once the estimate has `min_samples`, one latency in this many is recorded (by a count of the
/// thread's latencies, which knows nothing of their values, so the sample stays fair): the
/// shared increment is the only cost a call that answers at once pays for an adaptive delay,
/// and a quarter of it is a quarter of that.
#[cfg(not(loom))]
pub(crate) const SAMPLE: u64 = 4;

/// The bucket of a latency of `micros` microseconds.
fn bucket(micros: u64) -> usize {
    let max = (1u64 << (MAX_EXP + 1)) - 1;
    let v = micros.min(max);
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    let shift = exp - SUB_BITS;
    (u64::from(exp - SUB_BITS + 1) * SUB + ((v >> shift) & (SUB - 1))) as usize
}

/// The lowest value of bucket `index` and its width, in microseconds.
fn bounds(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < SUB {
        return (index, 1);
    }
    let exp = (index / SUB) as u32 + SUB_BITS - 1;
    let shift = exp - SUB_BITS;
    ((SUB + index % SUB) << shift, 1 << shift)
}

/// The value a bucket reports: its midpoint.
fn midpoint(index: usize) -> u64 {
    let (low, width) = bounds(index);
    low + width / 2
}

/// A decaying percentile estimate of latencies, shared by every call of one hedge policy.
pub(crate) struct LatencyEstimate {
    /// Latencies seen to the end.
    events: [AtomicU32; BUCKETS],
    /// Lower bounds: first attempts dropped after running this long.
    censored: [AtomicU32; BUCKETS],
    /// Samples recorded before the estimate had `min_samples` (counted only until then).
    early: AtomicU64,
    /// Whether the estimate has had `min_samples` samples and published a percentile.
    ready: AtomicBool,
    /// Halvings so far: odd and even ones round opposite ways.
    halvings: AtomicU64,
    /// The delay to use, in nanoseconds, clamped to `[min, max]`.
    published: AtomicU64,
    /// Set while one thread recomputes.
    busy: AtomicBool,
    percentile: f64,
    min: Duration,
    max: Duration,
    min_samples: u64,
}

impl LatencyEstimate {
    /// An empty estimate that reports `max` until it has `min_samples` samples.
    pub(crate) fn new(percentile: f64, min: Duration, max: Duration, min_samples: u32) -> Self {
        Self {
            events: std::array::from_fn(|_| AtomicU32::new(0)),
            censored: std::array::from_fn(|_| AtomicU32::new(0)),
            early: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            halvings: AtomicU64::new(0),
            published: AtomicU64::new(nanos(max)),
            busy: AtomicBool::new(false),
            percentile,
            min,
            max,
            min_samples: u64::from(min_samples),
        }
    }

    /// The delay to use now: the percentile of recent samples within `[min, max]`, or `max`
    /// before `min_samples` samples. One atomic load.
    #[inline]
    pub(crate) fn delay(&self) -> Duration {
        Duration::from_nanos(self.published.load(Ordering::Relaxed))
    }

    /// Records a latency seen to the end: one atomic increment of its bucket, plus, once every
    /// [`REFRESH`] samples on this thread, the walk that publishes a new delay (and, until the
    /// estimate has `min_samples`, an increment of the count of early samples).
    #[inline]
    pub(crate) fn record(&self, latency: Duration) {
        self.add(&self.events, latency);
    }

    /// Records a lower bound: an attempt dropped after running `elapsed`, whose latency would
    /// have been longer.
    #[inline]
    pub(crate) fn record_censored(&self, elapsed: Duration) {
        self.add(&self.censored, elapsed);
    }

    #[inline]
    fn add(&self, counts: &[AtomicU32; BUCKETS], latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        // No overflow: the halving keeps the counts' sum near two half-lives of samples, far
        // from 2^32.
        if self.ready.load(Ordering::Relaxed) {
            let n = tick();
            if !n.is_multiple_of(SAMPLE) {
                return;
            }
            counts[bucket(micros)].fetch_add(1, Ordering::Relaxed);
            if n.is_multiple_of(SAMPLE * REFRESH) {
                self.refresh();
            }
        } else {
            counts[bucket(micros)].fetch_add(1, Ordering::Relaxed);
            if self.early.fetch_add(1, Ordering::Relaxed) + 1 >= self.min_samples {
                self.refresh();
            }
        }
    }

    /// Halves the counts if they weigh two half-lives, then publishes the clamped percentile.
    /// Skipped if another thread is at it: its result is as good.
    #[cold]
    fn refresh(&self) {
        if self.busy.swap(true, Ordering::Acquire) {
            return;
        }
        let total: u64 = self
            .events
            .iter()
            .chain(&self.censored)
            .map(|c| u64::from(c.load(Ordering::Relaxed)))
            .sum();
        if total >= 2 * HALF_LIFE {
            let up = self
                .halvings
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(2);
            for count in self.events.iter().chain(&self.censored) {
                // Per bucket atomic: an increment racing with the halving is kept, before or
                // after it.
                let _ = count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                    Some(if up { c - c / 2 } else { c / 2 })
                });
            }
        }
        let delay = self.percentile_micros().map_or(self.max, |value| {
            Duration::from_micros(value).clamp(self.min, self.max)
        });
        self.published.store(nanos(delay), Ordering::Relaxed);
        self.ready.store(true, Ordering::Relaxed);
        self.busy.store(false, Ordering::Release);
    }

    /// The Kaplan–Meier percentile of the (decayed) counts, as a bucket midpoint; `None` if
    /// there is nothing yet, or if what was seen does not reach the percentile (it lies beyond
    /// the censored samples).
    fn percentile_micros(&self) -> Option<u64> {
        let load = |counts: &[AtomicU32; BUCKETS]| {
            let mut copy = [0u32; BUCKETS];
            for (copy, count) in copy.iter_mut().zip(counts) {
                *copy = count.load(Ordering::Relaxed);
            }
            copy
        };
        let (events, censored) = (load(&self.events), load(&self.censored));
        let total: u64 = events.iter().chain(&censored).map(|&c| u64::from(c)).sum();
        if total == 0 {
            return None;
        }
        // Read as a share, with room for rounding: without censoring, the first bucket whose
        // cumulative count reaches `percentile` of the total (nearest rank).
        let target = self.percentile / 100.0 - 1e-9;
        let mut at_risk = total as f64;
        let mut survival = 1.0;
        for (index, (&e, &c)) in events.iter().zip(&censored).enumerate() {
            if e > 0 {
                survival *= 1.0 - f64::from(e) / at_risk;
                if 1.0 - survival >= target {
                    return Some(midpoint(index));
                }
            }
            at_risk -= f64::from(e) + f64::from(c);
            if at_risk <= 0.0 {
                break;
            }
        }
        None
    }
}

/// The count of latencies offered on this thread, this one included: the latencies of all
/// estimates on a thread are counted together (each estimate still sees one in [`SAMPLE`] of
/// its own on average, and refreshes every [`REFRESH`] of its samples), with no shared counter
/// to bounce between cores.
#[cfg(not(loom))]
#[inline]
fn tick() -> u64 {
    thread_local! {
        static OFFERED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    OFFERED
        .try_with(|offered| {
            let n = offered.get().wrapping_add(1);
            offered.set(n);
            n
        })
        // During thread teardown: record, and refresh now and then.
        .unwrap_or(SAMPLE)
}

/// Under loom, every latency is recorded and refreshes.
#[cfg(loom)]
const SAMPLE: u64 = 1;
#[cfg(loom)]
const REFRESH: u64 = 1;
#[cfg(loom)]
fn tick() -> u64 {
    1
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl fmt::Debug for LatencyEstimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyEstimate")
            .field("percentile", &self.percentile)
            .field("delay", &self.delay())
            .field("ready", &self.ready.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// The exact nearest-rank percentile of `samples`.
    fn exact(samples: &mut [u64], percentile: f64) -> u64 {
        samples.sort_unstable();
        let rank = ((percentile / 100.0) * samples.len() as f64)
            .ceil()
            .max(1.0) as usize;
        samples[rank - 1]
    }

    #[test]
    fn buckets_cover_every_value_in_order_with_bounded_width() {
        let mut previous = 0;
        for index in 0..BUCKETS {
            let (low, width) = bounds(index);
            assert_eq!(low, previous, "bucket {index} starts where the last ended");
            assert_eq!(bucket(low), index);
            assert_eq!(bucket(low + width - 1), index);
            if low >= SUB {
                assert!(width * SUB <= low, "bucket {index}: width {width} at {low}");
            }
            previous = low + width;
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!(BUCKETS, 384);
    }

    #[test]
    fn midpoints_are_within_a_32nd_of_every_value_in_their_bucket() {
        for v in (1..5_000_000u64)
            .step_by(997)
            .chain([16, 17, 31, 32, 33, 1 << 20])
        {
            let m = midpoint(bucket(v));
            let error = m.abs_diff(v) as f64 / v as f64;
            assert!(
                error <= 1.0 / 32.0 + 1e-9,
                "{v} µs reported as {m}: {error}"
            );
        }
    }

    #[test]
    fn before_min_samples_the_delay_is_the_ceiling() {
        let estimate = LatencyEstimate::new(95.0, us(0), us(500_000), 50);
        for _ in 0..49 {
            estimate.record(us(1_000));
        }
        assert_eq!(estimate.delay(), us(500_000));
        estimate.record(us(1_000));
        let delay = estimate.delay();
        assert!(delay.abs_diff(us(1_000)) <= us(1_000 / 32), "{delay:?}");
    }

    #[test]
    fn the_delay_stays_between_floor_and_ceiling() {
        let estimate = LatencyEstimate::new(50.0, us(2_000), us(3_000), 1);
        for _ in 0..REFRESH {
            estimate.record(us(10));
        }
        assert_eq!(estimate.delay(), us(2_000));
        for _ in 0..4 * HALF_LIFE {
            estimate.record(Duration::from_secs(3600));
        }
        assert_eq!(estimate.delay(), us(3_000));
    }

    /// Accuracy against the exact sample percentile, for shapes latency takes: uniform, a
    /// long-tailed log-normal, and a bimodal mixture (a fast path and a slow one).
    #[test]
    fn percentiles_track_the_exact_ones_within_the_bucket_error() {
        let mut rng = fastrand::Rng::with_seed(7);
        let normal = |rng: &mut fastrand::Rng| {
            let (u1, u2) = (1.0 - rng.f64(), rng.f64());
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        };
        type Draw = Box<dyn Fn(&mut fastrand::Rng) -> u64>;
        let shapes: Vec<(&str, Draw)> = vec![
            ("uniform 5-15 ms", Box::new(|rng| rng.u64(5_000..15_000))),
            (
                "lognormal median 20 ms",
                Box::new(move |rng| ((20_000f64.ln() + 0.8 * normal(rng)).exp()) as u64),
            ),
            (
                "99% 5-15 ms, 1% 1 s",
                Box::new(|rng| {
                    if rng.f64() < 0.99 {
                        rng.u64(5_000..15_000)
                    } else {
                        1_000_000
                    }
                }),
            ),
        ];
        for (name, draw) in shapes {
            for percentile in [50.0, 90.0, 95.0, 99.0] {
                // Fewer samples than a half-life, so that every sample counts fully, and never
                // `min_samples`, so that every one is recorded.
                let n = HALF_LIFE as usize - 1;
                let estimate = LatencyEstimate::new(percentile, us(0), us(u64::MAX / 2), u32::MAX);
                let mut samples: Vec<u64> = (0..n).map(|_| draw(&mut rng)).collect();
                for &s in &samples {
                    estimate.record(us(s));
                }
                let got = estimate.percentile_micros().unwrap();
                let want = exact(&mut samples, percentile);
                let error = got.abs_diff(want) as f64 / want as f64;
                assert!(
                    error <= 1.0 / 32.0 + 1e-9,
                    "{name} p{percentile}: estimated {got} µs, exact {want} µs ({error:.4})"
                );
            }
        }
    }

    #[test]
    fn old_samples_fade_and_the_estimate_follows_a_shift() {
        let estimate = LatencyEstimate::new(95.0, us(0), us(10_000_000), 10);
        for _ in 0..4 * HALF_LIFE {
            estimate.record(us(10_000));
        }
        let before = estimate.delay();
        assert!(before.abs_diff(us(10_000)) <= us(10_000 / 32), "{before:?}");
        // The dependency slows to 100 ms: after a few half-lives the old 10 ms samples weigh
        // less than 5% and the p95 is the new latency.
        for _ in 0..5 * HALF_LIFE {
            estimate.record(us(100_000));
        }
        let after = estimate.delay();
        assert!(after.abs_diff(us(100_000)) <= us(100_000 / 32), "{after:?}");
        // Total weight stays bounded: about two half-lives' worth.
        let total: u64 = estimate
            .events
            .iter()
            .map(|c| u64::from(c.load(Ordering::Relaxed)))
            .sum();
        assert!(total <= 2 * HALF_LIFE + REFRESH, "{total}");
    }

    /// First attempts cut short by a hedge: 80% answer in 5-15 ms, 20% take 900 ms-1.1 s. A
    /// hedge goes out after `delay` and takes a latency of the same dependency; if it answers
    /// first, the first attempt is recorded as censored at the time it ran. The Kaplan–Meier p90
    /// stays at the true p90 whatever the delay, where the censored times read as latencies
    /// would put it near the delay.
    #[test]
    fn censored_samples_keep_the_percentile_where_the_latencies_are() {
        let mut rng = fastrand::Rng::with_seed(11);
        let draw = |rng: &mut fastrand::Rng| {
            if rng.f64() < 0.8 {
                rng.u64(5_000..15_000)
            } else {
                rng.u64(900_000..1_100_000)
            }
        };
        for delay in [20_000u64, 100_000, 500_000] {
            let estimate = LatencyEstimate::new(90.0, us(0), us(10_000_000), u32::MAX);
            let mut truth = Vec::new();
            let mut cut = 0;
            for _ in 0..HALF_LIFE - 1 {
                let latency = draw(&mut rng);
                truth.push(latency);
                let hedge_answers = delay + draw(&mut rng);
                if latency > delay && hedge_answers < latency {
                    estimate.record_censored(us(hedge_answers));
                    cut += 1;
                } else {
                    estimate.record(us(latency));
                }
            }
            assert!(cut > 100, "the scenario censors: {cut}");
            let got = estimate.percentile_micros().unwrap();
            let want = exact(&mut truth, 90.0);
            let error = got.abs_diff(want) as f64 / want as f64;
            assert!(
                error < 0.08,
                "delay {delay} µs: p90 {got} µs, true {want} µs"
            );
        }
    }

    #[test]
    fn a_percentile_beyond_every_censored_sample_publishes_the_ceiling() {
        let estimate = LatencyEstimate::new(90.0, us(0), us(2_000_000), 1);
        for i in 0..REFRESH {
            if i % 5 == 0 {
                estimate.record_censored(us(50_000));
            } else {
                estimate.record(us(10_000));
            }
        }
        // 80% answered in 10 ms; the rest ran over 50 ms and were cut: the p90 is unknown,
        // beyond 50 ms.
        assert_eq!(estimate.delay(), us(2_000_000));
    }

    #[test]
    fn once_ready_one_latency_in_four_is_recorded() {
        let estimate = LatencyEstimate::new(50.0, us(0), us(1_000_000), 10);
        for _ in 0..10 {
            estimate.record(us(1_000));
        }
        assert!(estimate.ready.load(Ordering::Relaxed));
        // This test's thread counts its own latencies: 400 more make 100 samples.
        for _ in 0..400 {
            estimate.record(us(1_000));
        }
        let total: u64 = estimate
            .events
            .iter()
            .map(|c| u64::from(c.load(Ordering::Relaxed)))
            .sum();
        assert_eq!(total, 10 + 400 / SAMPLE);
    }

    #[test]
    fn concurrent_records_lose_nothing_and_publish_within_bounds() {
        let estimate = std::sync::Arc::new(LatencyEstimate::new(90.0, us(100), us(900), 100));
        let per_thread = 200u64; // fewer than a half-life in all: nothing is halved
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let estimate = &estimate;
                s.spawn(move || {
                    for i in 0..per_thread {
                        estimate.record(us(50 + (t * per_thread + i) % 1000));
                        let d = estimate.delay();
                        assert!(us(100) <= d && d <= us(900), "{d:?}");
                    }
                });
            }
        });
        let total: u64 = estimate
            .events
            .iter()
            .map(|c| u64::from(c.load(Ordering::Relaxed)))
            .sum();
        // Every latency until the estimate was ready (at least 100), then one in four per
        // thread (each thread's count starts at zero).
        let after = 4 * per_thread - 100;
        assert!(
            (100 + after / SAMPLE - 4..=4 * per_thread).contains(&total),
            "{total}"
        );
    }
}

#[cfg(loom)]
mod loom_tests {
    use super::*;
    use crate::loom::Arc;

    /// Two threads record while the refresh (halving included) runs: no increment is lost to a
    /// halving (each lands before or after it), and the published delay stays within bounds.
    #[test]
    fn loom_records_and_halving_race_without_losing_bounds() {
        loom::model(|| {
            let min = Duration::from_micros(2);
            let max = Duration::from_micros(5);
            let estimate = Arc::new(LatencyEstimate::new(50.0, min, max, 1));
            let other = {
                let estimate = estimate.clone();
                loom::thread::spawn(move || {
                    estimate.record(Duration::from_micros(1));
                    estimate.delay()
                })
            };
            estimate.record(Duration::from_micros(6));
            let here = estimate.delay();
            let there = other.join().unwrap();
            for d in [here, there, estimate.delay()] {
                assert!(min <= d && d <= max, "{d:?}");
            }
            let total: u32 = estimate
                .events
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .sum();
            // Two samples; at most one halving, rounding up first: 2 → 1, or 1 and 1 → 1 and 1.
            assert!((1..=2).contains(&total), "{total}");
            assert!(estimate.ready.load(Ordering::Relaxed));
        });
    }
}
