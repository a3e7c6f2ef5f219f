//! Counting a run as it goes: per segment of the report, counts and a latency histogram, never a
//! sample per request or per call, so that memory does not grow with the length of the run.
//!
//! Latency quantiles come from an HDR histogram (`hdrhistogram`, three significant digits: a
//! quantile is within 0.1% of the exact nearest-rank value, and never above the exact maximum,
//! which is kept on the side). Everything else is a count. Two facts keep the rest streaming:
//! virtual time never goes back, so calls arrive in time order (the busiest second of a segment
//! is a running maximum) and so do the ends of requests (the first success after a phase is the
//! first one seen after it).

use std::time::Duration;

use hdrhistogram::Histogram;
use staunch::StopReason;

use super::engine::{Call, CallEnd, Observer, Outcome};

/// Latencies of finished requests: a streaming histogram (microseconds) and the exact maximum.
#[derive(Debug, Clone)]
pub struct Latencies {
    histogram: Histogram<u32>,
    max: Option<Duration>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            // An auto-resizing histogram grows with the largest value, not with the count.
            histogram: Histogram::new(3).expect("3 significant digits is a valid histogram"),
            max: None,
        }
    }
}

impl Latencies {
    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if self.histogram.record(micros).is_err() {
            // Beyond the histogram's reach (centuries): counted at its top.
            self.histogram.saturating_record(micros);
        }
        self.max = self.max.max(Some(latency));
    }

    /// The nearest-rank quantile `q` (0.99 for p99), within 0.1%; `None` with no latency.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let max = self.max?;
        let micros = self.histogram.value_at_quantile(q);
        Some(Duration::from_micros(micros).min(max))
    }

    /// The slowest, exactly.
    pub fn max(&self) -> Option<Duration> {
        self.max
    }

    /// How many latencies were recorded.
    pub fn len(&self) -> u64 {
        self.histogram.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.max.is_none()
    }
}

/// The most events in one whole second, counted as they come in time order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeakRate {
    second: u64,
    count: usize,
    peak: usize,
}

impl PeakRate {
    /// Counts one event at `at`; `at` never goes back.
    pub fn add(&mut self, at: Duration) {
        let second = at.as_secs();
        if second != self.second {
            self.second = second;
            self.count = 0;
        }
        self.count += 1;
        self.peak = self.peak.max(self.count);
    }

    /// The most events seen in one second.
    pub fn peak(&self) -> usize {
        self.peak
    }
}

/// The counts of the requests that arrived in one window.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Requests that arrived.
    pub requests: usize,
    /// Answered by the dependency.
    pub success: usize,
    /// Answered by the fallback.
    pub fallback: usize,
    /// Failed.
    pub failed: usize,
    /// Calls these requests made to the dependency.
    pub calls: u64,
    /// Of those, the hedges: attempts after a call's first under a hedging policy.
    pub hedges: u64,
    /// The time from arrival to answer of those that finished.
    pub latencies: Latencies,
    /// Calls (by any request) that started in this window, per second.
    pub rate: PeakRate,
}

impl Tally {
    /// Requests still running when the run ended.
    pub fn unfinished(&self) -> usize {
        self.requests - self.success - self.fallback - self.failed
    }

    fn finish(&mut self, outcome: Outcome, latency: Duration) {
        match outcome {
            Outcome::Success => self.success += 1,
            Outcome::Fallback(_) => self.fallback += 1,
            Outcome::Failed(_) => self.failed += 1,
            Outcome::Unfinished => return,
        }
        self.latencies.record(latency);
    }
}

/// The most buckets a timeline has: enough for a chart's resolution, whatever the run's length.
pub const MAX_BUCKETS: usize = 240;

/// The width of a timeline's buckets for a run of `duration`: at most [`MAX_BUCKETS`] of them,
/// 1, 2 or 5 times a power of ten seconds, at least 100 ms.
pub fn bucket_width(duration: Duration) -> Duration {
    let mut step = Duration::from_millis(100);
    let mut k = 0;
    while duration.as_secs_f64() / step.as_secs_f64() > MAX_BUCKETS as f64 {
        k += 1;
        let power = 10_u64.pow(k / 3);
        step = Duration::from_millis(100 * power * [1, 2, 5][(k % 3) as usize]);
    }
    step
}

/// One bucket of a timeline.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// Calls to the dependency that started in it.
    pub calls: u32,
    /// Requests that arrived in it.
    pub arrivals: u32,
    /// Successes that ended in it: the goodput.
    pub goodput: u32,
    /// The latency of the requests that arrived in it (two significant digits: a chart's).
    pub latencies: Histogram<u32>,
}

impl Default for Bucket {
    fn default() -> Self {
        Self {
            calls: 0,
            arrivals: 0,
            goodput: 0,
            latencies: Histogram::new(2).expect("2 significant digits is a valid histogram"),
        }
    }
}

/// Counts per bucket of time over `[0, duration)`, for charts: a fixed number of buckets,
/// whatever the length of the run.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// The width of a bucket.
    pub width: Duration,
    /// The buckets, from 0.
    pub buckets: Vec<Bucket>,
}

impl Timeline {
    fn new(duration: Duration) -> Self {
        let width = bucket_width(duration);
        let n = (duration.as_secs_f64() / width.as_secs_f64())
            .ceil()
            .max(1.0) as usize;
        Self {
            width,
            buckets: vec![Bucket::default(); n],
        }
    }

    fn at(&mut self, t: Duration) -> Option<&mut Bucket> {
        let i = usize::try_from(t.as_nanos() / self.width.as_nanos().max(1)).ok()?;
        self.buckets.get_mut(i)
    }
}

/// The width of the buckets in which retries are counted for their burstiness.
pub const RETRY_BUCKET: Duration = Duration::from_millis(100);

/// Retries (attempts after a call's first) per [`RETRY_BUCKET`], counted as they come in time
/// order: how much they bunch up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bursts {
    bucket: u64,
    count: u64,
    /// The most retries in one bucket.
    pub peak: u64,
    /// Every retry.
    pub total: u64,
    /// The buckets that had at least one.
    pub busy: u64,
}

impl Bursts {
    /// Counts one retry at `at`; `at` never goes back.
    pub fn add(&mut self, at: Duration) {
        let bucket = (at.as_nanos() / RETRY_BUCKET.as_nanos()) as u64;
        if self.total == 0 || bucket != self.bucket {
            self.bucket = bucket;
            self.count = 0;
            self.busy += 1;
        }
        self.count += 1;
        self.total += 1;
        self.peak = self.peak.max(self.count);
    }

    /// The most retries in one bucket over their mean per bucket with any: 1.0 when retries
    /// are spread evenly, higher the more they come in waves; `None` without a retry.
    pub fn peak_to_mean(&self) -> Option<f64> {
        (self.total > 0).then(|| self.peak as f64 * self.busy as f64 / self.total as f64)
    }
}

/// Arrivals and successes per second after the end of an incident, for its recovery time.
#[derive(Debug, Clone)]
struct AfterEnd {
    end: Duration,
    /// Per second since `end`: (arrived, succeeded), by arrival.
    seconds: Vec<(u32, u32)>,
}

impl AfterEnd {
    fn second(&mut self, arrival: Duration) -> Option<&mut (u32, u32)> {
        let k = usize::try_from(arrival.checked_sub(self.end)?.as_secs()).ok()?;
        self.seconds.get_mut(k)
    }
}

/// The observer of a run for the report: a [`Tally`] per window and for the whole load, why the
/// requests that the dependency did not answer stopped, and what incidents' recovery needs.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// The windows, in order, contiguous, covering `[0, duration)`.
    windows: Vec<(Duration, Duration)>,
    duration: Duration,
    /// A tally per window.
    pub windows_tally: Vec<Tally>,
    /// The tally of every request (and of the calls in `[0, duration)` for the peak rate).
    pub overall: Tally,
    /// Per window: the time from its end to the first success that ended after it.
    pub first_success: Vec<Option<Duration>>,
    /// Windows by end whose first success has been seen: a prefix, since ends come in order.
    satisfied: usize,
    /// Recovery counts, for the windows that asked for them (by window index).
    after: Vec<(usize, AfterEnd)>,
    /// (reason, answered by the fallback, failed).
    pub stop_reasons: Vec<(StopReason, usize, usize)>,
    /// Counts over time, for charts.
    pub timeline: Timeline,
    /// Retries of every client, for how they bunch up.
    pub retries: Bursts,
    /// Per dependency: its calls by the window of their request's arrival, and over the run.
    /// `requests` counts the requests that called it; the latency is the call's own, from its
    /// start to its answer.
    pub dependencies: Vec<(Vec<Tally>, Tally)>,
    /// Per dependency: why its calls that it did not answer stopped, as `stop_reasons`.
    pub dependency_stops: Vec<Vec<(StopReason, usize, usize)>>,
}

/// Counts why a call or request that the dependency did not answer stopped, in `reasons`
/// (reason, answered by the fallback, failed); nothing for an answer.
fn count_stop(reasons: &mut Vec<(StopReason, usize, usize)>, outcome: Outcome) {
    let (reason, fallback) = match outcome {
        Outcome::Fallback(reason) => (reason, 1),
        Outcome::Failed(reason) => (reason, 0),
        Outcome::Success | Outcome::Unfinished => return,
    };
    match reasons.iter_mut().find(|(r, ..)| *r == reason) {
        Some(entry) => {
            entry.1 += fallback;
            entry.2 += 1 - fallback;
        }
        None => reasons.push((reason, fallback, 1 - fallback)),
    }
}

impl Recorder {
    /// A recorder for `windows` (contiguous, in order, covering `[0, duration)`); those listed
    /// in `incidents` also count arrivals and successes per second after their end. It keeps a
    /// tally per window for each of `dependencies`, too.
    pub fn new(
        windows: Vec<(Duration, Duration)>,
        duration: Duration,
        incidents: &[usize],
        dependencies: usize,
    ) -> Self {
        let after = incidents
            .iter()
            .filter_map(|&i| {
                let (_, end) = *windows.get(i)?;
                let seconds = duration.saturating_sub(end).as_secs_f64().ceil() as usize;
                Some((
                    i,
                    AfterEnd {
                        end,
                        seconds: vec![(0, 0); seconds],
                    },
                ))
            })
            .collect();
        let dependency_stops = vec![Vec::new(); dependencies];
        let dependencies =
            vec![(vec![Tally::default(); windows.len()], Tally::default()); dependencies];
        Self {
            windows_tally: vec![Tally::default(); windows.len()],
            first_success: vec![None; windows.len()],
            windows,
            duration,
            overall: Tally::default(),
            satisfied: 0,
            after,
            stop_reasons: Vec::new(),
            timeline: Timeline::new(duration),
            retries: Bursts::default(),
            dependencies,
            dependency_stops,
        }
    }

    fn window(&self, t: Duration) -> Option<usize> {
        let i = self.windows.partition_point(|&(_, end)| end <= t);
        (i < self.windows.len() && self.windows[i].0 <= t).then_some(i)
    }

    /// The first second since window `i`'s end whose arrivals succeeded at least `share` of
    /// the time, measured from that end; `None` if none did or `i` was not an incident.
    pub fn recovered(&self, i: usize, share: f64) -> Option<Duration> {
        let (_, after) = self.after.iter().find(|(j, _)| *j == i)?;
        after
            .seconds
            .iter()
            .position(|&(arrived, succeeded)| {
                arrived > 0 && f64::from(succeeded) >= share * f64::from(arrived)
            })
            .map(|k| Duration::from_secs(k as u64))
    }
}

impl Observer for Recorder {
    fn arrived(&mut self, _request: u64, at: Duration) {
        self.overall.requests += 1;
        if let Some(bucket) = self.timeline.at(at) {
            bucket.arrivals += 1;
        }
        if let Some(i) = self.window(at) {
            self.windows_tally[i].requests += 1;
        }
        for (_, after) in &mut self.after {
            if let Some(second) = after.second(at) {
                second.0 += 1;
            }
        }
    }

    fn called(&mut self, call: &Call) {
        let (arrival, at) = (call.arrival, call.at);
        let window = self.window(arrival);
        let now = (at < self.duration).then(|| self.window(at)).flatten();
        let tallies = [(&mut self.windows_tally, &mut self.overall)]
            .into_iter()
            .chain(
                self.dependencies
                    .get_mut(call.dependency)
                    .map(|(w, o)| (w, o)),
            );
        let hedge = u64::from(call.hedge);
        for (windows, overall) in tallies {
            overall.calls += 1;
            overall.hedges += hedge;
            if let Some(i) = window {
                windows[i].calls += 1;
                windows[i].hedges += hedge;
            }
            if at < self.duration {
                overall.rate.add(at);
                if let Some(i) = now {
                    windows[i].rate.add(at);
                }
            }
        }
        if let Some(bucket) = self.timeline.at(at) {
            bucket.calls += 1;
        }
        // A hedge is sent on a timer while its first attempt runs, not after a failure: it is
        // counted as a hedge, not among the retries whose bunching the fleet measures.
        if call.attempt > 1 && !call.hedge {
            self.retries.add(at);
        }
    }

    fn call_started(&mut self, dependency: usize, arrival: Duration) {
        let window = self.window(arrival);
        if let Some((windows, overall)) = self.dependencies.get_mut(dependency) {
            overall.requests += 1;
            if let Some(i) = window {
                windows[i].requests += 1;
            }
        }
    }

    fn call_ended(&mut self, end: &CallEnd) {
        let window = self.window(end.arrival);
        if let Some((windows, overall)) = self.dependencies.get_mut(end.dependency) {
            let latency = end.end.saturating_sub(end.start);
            overall.finish(end.outcome, latency);
            if let Some(i) = window {
                windows[i].finish(end.outcome, latency);
            }
        }
        if let Some(reasons) = self.dependency_stops.get_mut(end.dependency) {
            count_stop(reasons, end.outcome);
        }
    }

    fn finished(
        &mut self,
        _request: u64,
        arrival: Duration,
        end: Duration,
        outcome: Outcome,
        _calls: u32,
    ) {
        let latency = end.saturating_sub(arrival);
        self.overall.finish(outcome, latency);
        if outcome != Outcome::Unfinished
            && let Some(bucket) = self.timeline.at(arrival)
        {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            if bucket.latencies.record(micros).is_err() {
                bucket.latencies.saturating_record(micros);
            }
        }
        if outcome == Outcome::Success
            && let Some(bucket) = self.timeline.at(end)
        {
            bucket.goodput += 1;
        }
        if let Some(i) = self.window(arrival) {
            self.windows_tally[i].finish(outcome, latency);
        }
        count_stop(&mut self.stop_reasons, outcome);
        if outcome == Outcome::Success {
            // Ends come in time order: this is the first success after every window that ended
            // at or before it and has none yet.
            while self.satisfied < self.windows.len() && self.windows[self.satisfied].1 <= end {
                self.first_success[self.satisfied] = Some(end - self.windows[self.satisfied].1);
                self.satisfied += 1;
            }
            for (_, after) in &mut self.after {
                if let Some(second) = after.second(arrival) {
                    second.1 += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn quantiles_by_nearest_rank_within_a_tenth_of_a_percent() {
        let mut l = Latencies::default();
        assert_eq!(l.quantile(0.5), None);
        for n in 1..=100 {
            l.record(ms(n));
        }
        let near = |got: Option<Duration>, want: Duration| {
            let got = got.unwrap().as_secs_f64();
            (got - want.as_secs_f64()).abs() <= want.as_secs_f64() * 0.001
        };
        assert!(near(l.quantile(0.5), ms(50)), "{:?}", l.quantile(0.5));
        assert!(near(l.quantile(0.99), ms(99)), "{:?}", l.quantile(0.99));
        assert!(near(l.quantile(0.999), ms(100)), "{:?}", l.quantile(0.999));
        assert_eq!(l.max(), Some(ms(100)));
        assert_eq!(l.len(), 100);
        // Never above the exact maximum, though the histogram rounds up within its bucket.
        let mut one = Latencies::default();
        one.record(Duration::from_secs(1));
        assert_eq!(one.quantile(0.99), Some(Duration::from_secs(1)));
    }

    #[test]
    fn a_histogram_does_not_grow_with_the_count() {
        let mut l = Latencies::default();
        l.record(Duration::from_micros(4_000_000));
        for n in 0..999 {
            l.record(Duration::from_micros(n * 997 % 4_000_000));
        }
        let size = l.histogram.distinct_values();
        for n in 0..100_000 {
            l.record(Duration::from_micros(n * 997 % 4_000_000));
        }
        assert_eq!(l.histogram.distinct_values(), size);
        assert_eq!(l.len(), 101_000);
    }

    #[test]
    fn a_timeline_has_a_bounded_number_of_round_buckets() {
        assert_eq!(bucket_width(Duration::from_secs(10)), ms(100));
        assert_eq!(bucket_width(Duration::from_secs(24)), ms(100));
        assert_eq!(bucket_width(Duration::from_secs(25)), ms(200));
        assert_eq!(bucket_width(Duration::from_secs(90)), ms(500));
        assert_eq!(
            bucket_width(Duration::from_secs(960)),
            Duration::from_secs(5)
        );
        for secs in [1, 7, 60, 3600, 86_400] {
            let timeline = Timeline::new(Duration::from_secs(secs));
            assert!(timeline.buckets.len() <= MAX_BUCKETS, "{secs} s");
        }
    }

    #[test]
    fn retries_in_waves_have_a_high_peak_to_mean() {
        let mut even = Bursts::default();
        for k in 0..10 {
            even.add(ms(100 * k));
        }
        assert_eq!(even.peak_to_mean(), Some(1.0));
        let mut waves = Bursts::default();
        for k in 0..10 {
            waves.add(ms(1000 * k)); // one retry a second
        }
        for _ in 0..30 {
            waves.add(ms(10_000)); // then thirty at once
        }
        assert_eq!((waves.peak, waves.total, waves.busy), (30, 40, 11));
        assert_eq!(waves.peak_to_mean(), Some(30.0 * 11.0 / 40.0));
        assert_eq!(Bursts::default().peak_to_mean(), None);
    }

    #[test]
    fn the_busiest_second_is_a_running_maximum() {
        let mut rate = PeakRate::default();
        for at in [0, 100, 900, 1000, 1500, 1600, 1700, 2000] {
            rate.add(ms(at));
        }
        assert_eq!(rate.peak(), 4); // 1.0 s, 1.5 s, 1.6 s, 1.7 s
    }

    #[test]
    fn the_recorder_counts_by_arrival_and_the_first_success_after_each_end() {
        let windows = vec![
            (ms(0), ms(1000)),
            (ms(1000), ms(2000)),
            (ms(2000), ms(5000)),
        ];
        let mut r = Recorder::new(windows, ms(5000), &[1], 1);
        for (i, at) in [0, 500, 1200, 1500, 2500].into_iter().enumerate() {
            r.arrived(i as u64, ms(at));
        }
        let call = |request: u64, arrival: u64, at: u64, attempt: u32| Call {
            request,
            arrival: ms(arrival),
            at: ms(at),
            dependency: 0,
            attempt,
            hedge: false,
            client: 0,
        };
        r.called(&call(0, 0, 0, 1));
        r.called(&call(2, 1200, 1200, 1));
        r.called(&call(2, 1200, 2100, 2)); // a retry in the next window
        r.finished(0, ms(0), ms(40), Outcome::Success, 1);
        r.finished(
            2,
            ms(1200),
            ms(2150),
            Outcome::Failed(StopReason::Exhausted),
            2,
        );
        r.finished(4, ms(2500), ms(2600), Outcome::Success, 1);
        let t = &r.windows_tally;
        assert_eq!((t[0].requests, t[1].requests, t[2].requests), (2, 2, 1));
        assert_eq!((t[0].success, t[0].unfinished()), (1, 1));
        assert_eq!((t[1].failed, t[1].calls), (1, 2));
        assert_eq!((t[1].rate.peak(), t[2].rate.peak()), (1, 1));
        assert_eq!(r.overall.calls, 3);
        assert_eq!(r.first_success, [Some(ms(1600)), Some(ms(600)), None]);
        assert_eq!(r.stop_reasons, [(StopReason::Exhausted, 0, 1)]);
        // After window 1's end (2 s): the second [2 s, 3 s) had one arrival, which succeeded.
        assert_eq!(r.recovered(1, 0.9), Some(Duration::ZERO));
        assert_eq!(r.recovered(0, 0.9), None); // not an incident
    }

    #[test]
    fn hedges_are_counted_per_window_and_dependency_and_not_as_retries() {
        let mut r = Recorder::new(vec![(ms(0), ms(1000))], ms(1000), &[], 2);
        r.arrived(0, ms(0));
        let call = |dependency: usize, attempt: u32, hedge: bool| Call {
            request: 0,
            arrival: ms(0),
            at: ms(20 * u64::from(attempt)),
            dependency,
            attempt,
            hedge,
            client: 0,
        };
        r.called(&call(0, 1, false));
        r.called(&call(0, 2, true)); // a hedge of dependency 0
        r.called(&call(1, 1, false));
        r.called(&call(1, 2, false)); // a retry of dependency 1
        assert_eq!((r.overall.calls, r.overall.hedges), (4, 1));
        assert_eq!(r.windows_tally[0].hedges, 1);
        assert_eq!(
            (r.dependencies[0].1.hedges, r.dependencies[1].1.hedges),
            (1, 0)
        );
        assert_eq!(r.dependencies[0].0[0].hedges, 1);
        assert_eq!(r.retries.total, 1);
        // Why each dependency's calls stopped, apart from the request's.
        let refused = StopReason::Refused(staunch::limit::Refusal::LimitFull);
        let end = |dependency: usize, outcome: Outcome| CallEnd {
            dependency,
            arrival: ms(0),
            start: ms(0),
            end: ms(100),
            outcome,
            calls: 1,
        };
        r.call_ended(&end(0, Outcome::Success));
        r.call_ended(&end(1, Outcome::Fallback(refused)));
        r.call_ended(&end(1, Outcome::Failed(refused)));
        assert!(r.dependency_stops[0].is_empty());
        assert_eq!(r.dependency_stops[1], [(refused, 1, 1)]);
    }
}
