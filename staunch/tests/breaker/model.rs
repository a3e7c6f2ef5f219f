//! Property test: random sequences of call starts, outcomes, drops, clock advances and manual
//! overrides, run against the breaker and against a simple single-threaded reference model of
//! the rules. They must agree on every decision and every state. The specs cover every rule and
//! setting: rates, failure counts, slow calls, a count-reset interval, growing open durations,
//! probe limits and leases, ratio decisions, the half-open maximum wait, and disabling.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use staunch::ManualClock;
use staunch::backoff::{Backoff, Jitter};
use staunch::breaker::{BreakerConfig, CircuitBreaker, OwnedPermit, State};

#[derive(Clone, Copy, Debug)]
enum RuleSpec {
    Consecutive(u32),
    Count {
        rate: f64,
        size: u32,
        min: u32,
    },
    /// A failure rate, a failure count, or both (`failure_count_time` when no rate).
    Time {
        rate: Option<f64>,
        window: Duration,
        buckets: u32,
        min: u32,
    },
}

#[derive(Clone, Copy, Debug)]
struct Spec {
    rule: RuleSpec,
    slow: Option<(Duration, f64)>,
    /// A window rule's failure-count threshold (always set for a time window without a rate).
    count: Option<u32>,
    interval: Option<Duration>,
    probes: u32,
    to_close: u32,
    /// Probe outcomes judged: `to_close` successes out of `out_of`.
    out_of: u32,
    open: Duration,
    growing: bool,
    lease: Duration,
    max_wait: Option<Duration>,
}

impl Spec {
    fn config(&self) -> BreakerConfig {
        let mut c = match self.rule {
            RuleSpec::Consecutive(n) => BreakerConfig::consecutive_failures(n),
            RuleSpec::Count { rate, size, min } => {
                BreakerConfig::failure_rate_count(rate, size).with_minimum_calls(min)
            }
            RuleSpec::Time {
                rate,
                window,
                buckets,
                min,
            } => match (rate, self.count) {
                (Some(rate), _) => BreakerConfig::failure_rate_time(rate, window),
                (None, count) => BreakerConfig::failure_count_time(count.unwrap(), window),
            }
            .with_buckets(buckets)
            .with_minimum_calls(min),
        };
        if !matches!(self.rule, RuleSpec::Consecutive(_)) {
            if let Some((threshold, rate)) = self.slow {
                c = c.with_slow_calls(threshold, rate);
            }
            if let Some(count) = self.count {
                c = c.with_failure_count(count);
            }
        }
        if let Some(interval) = self.interval {
            c = c.with_count_reset_interval(interval);
        }
        if let Some(wait) = self.max_wait {
            c = c.with_half_open_max_wait(wait);
        }
        c = c
            .with_half_open_probes(self.probes)
            .with_successes_to_close_out_of(self.to_close, self.out_of)
            .with_probe_lease(self.lease);
        if self.growing {
            c.with_open_backoff(self.backoff())
        } else {
            c.with_open_duration(self.open)
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::exponential(self.open)
            .with_max_delay(self.open * 4)
            .with_jitter(Jitter::None)
    }

    fn open_duration(&self, trips: u32) -> Duration {
        if self.growing {
            self.backoff().base_delay(trips.min(64))
        } else {
            self.open
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fin {
    Success,
    Failure,
    Ignore,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Start,
    Finish(usize, Fin),
    Drop(usize),
    Advance(u64),
    ForceOpen,
    ForceClosed,
    Disable,
    Reset,
}

#[derive(Clone, Copy, Debug)]
struct ModelPermit {
    generation: u32,
    probe: bool,
    started: Instant,
}

/// The reference model: plain fields, plain `Vec`s, the rules written as the docs state them.
struct Model {
    spec: Spec,
    origin: Instant,
    state: State,
    generation: u32,
    consecutive: u32,
    /// (recorded at, failed, slow), oldest first.
    window: VecDeque<(Instant, bool, bool)>,
    open_until: Instant,
    in_flight: u32,
    successes: u32,
    /// Half-open: probe failures so far (tolerated while below `out_of - to_close + 1`).
    failures: u32,
    last_probe_at: Instant,
    /// When the breaker last turned half-open from open, for the maximum wait.
    half_open_since: Instant,
    /// Closed with a count-reset interval: when the current period ends.
    period_end: Instant,
    trips: u32,
}

impl Model {
    fn new(spec: Spec, origin: Instant) -> Self {
        Self {
            spec,
            origin,
            state: State::Closed,
            generation: 0,
            consecutive: 0,
            window: VecDeque::new(),
            open_until: origin,
            in_flight: 0,
            successes: 0,
            failures: 0,
            last_probe_at: origin,
            half_open_since: origin,
            period_end: origin + spec.interval.unwrap_or_default(),
            trips: 0,
        }
    }

    fn enter(&mut self, state: State) {
        self.generation = (self.generation + 1) & ((1 << 25) - 1);
        self.state = state;
        self.consecutive = 0;
        self.window.clear();
        self.in_flight = 0;
        self.successes = 0;
        self.failures = 0;
    }

    /// A manual override: forcing the state the breaker is in changes nothing.
    fn force(&mut self, state: State) {
        if self.state != state {
            self.enter(state);
        }
    }

    fn trip(&mut self, now: Instant) {
        self.enter(State::Open);
        self.trips += 1;
        self.open_until = now + self.spec.open_duration(self.trips);
    }

    /// Closes (a probe success or a reset): the first period of a count-reset interval starts.
    fn close(&mut self, now: Instant) {
        self.enter(State::Closed);
        self.trips = 0;
        self.period_end = now + self.spec.interval.unwrap_or_default();
    }

    /// Closed with a count-reset interval whose period has ended at `now`.
    fn period_over(&self, now: Instant) -> bool {
        self.state == State::Closed && self.spec.interval.is_some() && now >= self.period_end
    }

    /// Half-open for the maximum wait at `now`.
    fn waited_out(&self, now: Instant) -> bool {
        self.spec
            .max_wait
            .is_some_and(|wait| now >= self.half_open_since + wait)
    }

    fn acquire(&mut self, now: Instant) -> Result<ModelPermit, Option<Instant>> {
        let permit = |generation, probe| ModelPermit {
            generation,
            probe,
            started: now,
        };
        match self.state {
            State::Closed if self.period_over(now) => {
                // The first call after a period's end starts the period it falls in.
                let interval = self.spec.interval.unwrap();
                while self.period_end <= now {
                    self.period_end += interval;
                }
                self.enter(State::Closed);
                Ok(permit(self.generation, false))
            }
            State::Closed | State::ForcedClosed | State::Disabled => {
                Ok(permit(self.generation, false))
            }
            State::ForcedOpen => Err(None),
            State::Open if now < self.open_until => Err(Some(self.open_until)),
            State::Open => {
                self.enter(State::HalfOpen);
                self.in_flight = 1;
                self.last_probe_at = self.last_probe_at.max(now);
                self.half_open_since = now;
                Ok(permit(self.generation, true))
            }
            _ if self.waited_out(now) => {
                self.trip(now); // and the new open period rejects this call
                Err(Some(self.open_until))
            }
            _ => {
                if self.in_flight < self.spec.probes {
                    self.in_flight += 1;
                    self.last_probe_at = self.last_probe_at.max(now);
                    return Ok(permit(self.generation, true));
                }
                let lease_end = self.last_probe_at + self.spec.lease;
                let wait_end = self.spec.max_wait.map(|wait| self.half_open_since + wait);
                if now < lease_end {
                    // The next probe: at the lease's end, unless the wait ends first (or then)
                    // and an open period follows.
                    return Err(Some(match wait_end {
                        Some(end) if end <= lease_end => {
                            end + self.spec.open_duration(self.trips + 1)
                        }
                        _ => lease_end,
                    }));
                }
                self.enter(State::HalfOpen);
                self.in_flight = 1;
                self.last_probe_at = self.last_probe_at.max(now);
                Ok(permit(self.generation, true))
            }
        }
    }

    fn finish(&mut self, p: ModelPermit, fin: Fin, now: Instant) {
        if p.generation != self.generation {
            return; // stale
        }
        if p.probe {
            if self.state != State::HalfOpen {
                return;
            }
            if self.waited_out(now) {
                self.trip(now);
                return;
            }
            match fin {
                Fin::Ignore => self.in_flight -= 1,
                Fin::Failure => {
                    self.failures += 1;
                    self.in_flight -= 1;
                    if self.failures > self.spec.out_of - self.spec.to_close {
                        self.trip(now);
                    }
                }
                Fin::Success => {
                    self.successes += 1;
                    self.in_flight -= 1;
                    if self.successes >= self.spec.to_close {
                        self.close(now);
                    }
                }
            }
            return;
        }
        if !matches!(self.state, State::Closed | State::ForcedClosed) || fin == Fin::Ignore {
            return;
        }
        if self.period_over(now) {
            return; // admitted in a period that has ended
        }
        let failed = fin == Fin::Failure;
        let (min, rate) = match self.spec.rule {
            RuleSpec::Consecutive(n) => {
                self.consecutive = if failed {
                    (self.consecutive + 1).min(0xFFFF)
                } else {
                    0
                };
                if self.state == State::Closed && self.consecutive >= n {
                    self.trip(now);
                }
                return;
            }
            RuleSpec::Count { rate, size, min } => {
                if self.window.len() == size as usize {
                    self.window.pop_front();
                }
                (min, Some(rate))
            }
            RuleSpec::Time { rate, min, .. } => (min, rate),
        };
        let slow = self
            .spec
            .slow
            .is_some_and(|(threshold, _)| now - p.started >= threshold);
        self.window.push_back((now, failed, slow));
        let (calls, failures, slows) = self.counts(now);
        let over = |n: usize, r: f64| n as f64 / calls as f64 >= r;
        let trips = calls >= min as usize
            && (rate.is_some_and(|r| over(failures, r))
                || self.spec.slow.is_some_and(|(_, r)| over(slows, r))
                || self.spec.count.is_some_and(|k| failures >= k as usize));
        if trips && self.state == State::Closed {
            self.trip(now);
        }
    }

    /// The window's (calls, failures, slow) as of `now`.
    fn counts(&self, now: Instant) -> (usize, usize, usize) {
        let live = |at: Instant| match self.spec.rule {
            RuleSpec::Time {
                window, buckets, ..
            } => {
                let bucket = (window.as_nanos() / u128::from(buckets)).max(1);
                let epoch = |t: Instant| (t - self.origin).as_nanos() / bucket;
                epoch(at) + u128::from(buckets) > epoch(now)
            }
            _ => true,
        };
        let live: Vec<_> = self.window.iter().filter(|(at, _, _)| live(*at)).collect();
        (
            live.len(),
            live.iter().filter(|e| e.1).count(),
            live.iter().filter(|e| e.2).count(),
        )
    }
}

fn rate() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.25), Just(0.5), Just(2.0 / 3.0), Just(1.0)]
}

fn spec() -> impl Strategy<Value = Spec> {
    let rule = prop_oneof![
        (1u32..4).prop_map(RuleSpec::Consecutive),
        (rate(), 1u32..6, 1u32..6).prop_map(|(rate, size, min)| RuleSpec::Count {
            rate,
            size,
            min: min.min(size)
        }),
        (
            proptest::option::weighted(0.7, rate()),
            1u64..8,
            1u32..5,
            1u32..5
        )
            .prop_map(|(rate, secs, buckets, min)| RuleSpec::Time {
                rate,
                window: Duration::from_secs(secs),
                buckets,
                min,
            }),
    ];
    let slow = proptest::option::of(
        (100u64..1500, rate()).prop_map(|(ms, r)| (Duration::from_millis(ms), r)),
    );
    let ms = |range: std::ops::Range<u64>| range.prop_map(Duration::from_millis);
    (
        (rule, slow, proptest::option::of(1u32..4)),
        proptest::option::of(ms(500..8000)),
        (1u32..4, 1u32..3, 0u32..3),
        (1u64..4, any::<bool>(), 1u64..6),
        proptest::option::of(ms(500..6000)),
    )
        .prop_map(
            |(
                (rule, slow, count),
                interval,
                (probes, to_close, tolerated),
                (open, growing, lease),
                max_wait,
            )| {
                let count = match rule {
                    RuleSpec::Consecutive(_) => None,
                    RuleSpec::Count { size, .. } => count.map(|k| k.min(size)),
                    RuleSpec::Time { rate: None, .. } => Some(count.unwrap_or(2)),
                    RuleSpec::Time { .. } => count,
                };
                Spec {
                    rule,
                    slow,
                    count,
                    interval,
                    probes,
                    to_close,
                    out_of: to_close + tolerated,
                    open: Duration::from_secs(open),
                    growing,
                    lease: Duration::from_secs(lease),
                    max_wait,
                }
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    let fin = prop_oneof![3 => Just(Fin::Success), 3 => Just(Fin::Failure), 1 => Just(Fin::Ignore)];
    prop_oneof![
        8 => Just(Op::Start),
        8 => (any::<usize>(), fin).prop_map(|(i, f)| Op::Finish(i, f)),
        2 => any::<usize>().prop_map(Op::Drop),
        5 => prop_oneof![0u64..500, 500u64..3000, Just(1000)].prop_map(Op::Advance),
        1 => prop_oneof![Just(Op::ForceOpen), Just(Op::ForceClosed), Just(Op::Disable), Just(Op::Reset)],
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    // The full comparison takes a snapshot, which records the successes counted without the
    // window lock; it runs after some steps only, so that such successes pile up in between.
    fn breaker_agrees_with_the_reference_model(spec in spec(), ops in proptest::collection::vec((op(), proptest::bool::weighted(0.3)), 1..120)) {
        let clock = ManualClock::new();
        let origin = clock.now();
        let breaker = CircuitBreaker::builder(spec.config()).clock(clock.clone().into()).build().unwrap();
        let mut model = Model::new(spec, origin);
        let mut held: Vec<(ModelPermit, OwnedPermit)> = Vec::new();

        for (step, (op, check)) in ops.into_iter().enumerate() {
            let now = clock.now();
            match op {
                Op::Start => {
                    let real = breaker.try_acquire_owned();
                    let expected = model.acquire(now);
                    match (real, expected) {
                        (Ok(real), Ok(m)) => {
                            prop_assert_eq!(real.is_probe(), m.probe, "step {}: probe?", step);
                            prop_assert_eq!(real.generation(), m.generation, "step {}", step);
                            held.push((m, real));
                        }
                        (Err(open), Err(retry_at)) => {
                            let retry_at_real = open.retry_after().map(|d| now + d);
                            prop_assert_eq!(retry_at_real, retry_at, "step {}: retry_at", step);
                        }
                        (real, expected) => prop_assert!(false, "step {}: breaker {:?}, model {:?}", step, real.map(|p| p.is_probe()), expected),
                    }
                }
                Op::Finish(i, fin) if !held.is_empty() => {
                    let (m, real) = held.remove(i % held.len());
                    match fin {
                        Fin::Success => real.success(),
                        Fin::Failure => real.failure(),
                        Fin::Ignore => real.ignore(),
                    }
                    model.finish(m, fin, now);
                }
                Op::Drop(i) if !held.is_empty() => {
                    let (m, real) = held.remove(i % held.len());
                    drop(real);
                    model.finish(m, Fin::Ignore, now);
                }
                Op::Finish(..) | Op::Drop(_) => {}
                Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
                Op::ForceOpen => { breaker.force_open(); model.force(State::ForcedOpen); }
                Op::ForceClosed => { breaker.force_closed(); model.force(State::ForcedClosed); }
                Op::Disable => { breaker.disable(); model.force(State::Disabled); }
                Op::Reset => { breaker.reset(); model.close(now); }
            }
            prop_assert_eq!(breaker.state(), model.state, "step {}: {:?}", step, op);
            if !check {
                continue;
            }
            let now = clock.now();
            let s = breaker.snapshot();
            prop_assert_eq!(s.state, model.state, "step {}: {:?}", step, op);
            prop_assert_eq!(s.generation, model.generation, "step {}", step);
            match s.state {
                State::HalfOpen => {
                    prop_assert_eq!(s.probes_in_flight, model.in_flight, "step {}", step);
                    prop_assert_eq!(s.probe_successes, model.successes, "step {}", step);
                    prop_assert_eq!(s.probe_failures, model.failures, "step {}", step);
                }
                // The period has ended: a snapshot shows it empty.
                State::Closed if model.period_over(now) => {
                    prop_assert_eq!((s.consecutive_failures, s.calls, s.failures), (0, 0, 0), "step {}", step);
                }
                State::Open => prop_assert_eq!(s.next_probe_at, Some(model.open_until), "step {}", step),
                State::Closed | State::ForcedClosed => {
                    if let RuleSpec::Consecutive(_) = spec.rule {
                        prop_assert_eq!(s.consecutive_failures, model.consecutive, "step {}", step);
                    } else {
                        let (calls, failures, slow) = model.counts(now);
                        prop_assert_eq!((s.calls as usize, s.failures as usize, s.slow_calls as usize), (calls, failures, slow), "step {}", step);
                    }
                }
                _ => {}
            }
        }
    }
}
