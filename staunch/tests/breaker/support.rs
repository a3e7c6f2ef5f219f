//! Shared helpers for the breaker integration tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use staunch::ManualClock;
use staunch::breaker::{BreakerConfig, CircuitBreaker, Reason, State};

pub(crate) const MS: Duration = Duration::from_millis(1);
pub(crate) const SEC: Duration = Duration::from_secs(1);

/// A breaker on a manual clock that logs its transitions.
pub(crate) struct Rig {
    pub(crate) breaker: CircuitBreaker,
    pub(crate) clock: ManualClock,
    pub(crate) log: Arc<Mutex<Vec<(State, State, Reason)>>>,
}

impl Rig {
    pub(crate) fn new(config: BreakerConfig) -> Self {
        let clock = ManualClock::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let breaker = CircuitBreaker::builder(config)
            .clock(clock.clone().into())
            .on_state_change(move |c| sink.lock().unwrap().push((c.from, c.to, c.reason)))
            .build()
            .expect("valid config");
        Self {
            breaker,
            clock,
            log,
        }
    }

    /// Runs one admitted call with the given outcome; panics if rejected.
    pub(crate) fn ok(&self) {
        self.breaker.try_acquire().expect("admitted").success();
    }

    pub(crate) fn fail(&self) {
        self.breaker.try_acquire().expect("admitted").failure();
    }

    /// Runs `outcomes` ('S' success, 'F' failure, 'I' ignored), each admitted.
    pub(crate) fn run(&self, outcomes: &str) {
        for c in outcomes.chars() {
            let permit = self.breaker.try_acquire().expect("admitted");
            match c {
                'S' => permit.success(),
                'F' => permit.failure(),
                'I' => permit.ignore(),
                other => panic!("unknown outcome {other:?}"),
            }
        }
    }

    pub(crate) fn state(&self) -> State {
        self.breaker.state()
    }

    pub(crate) fn transitions(&self) -> Vec<(State, State, Reason)> {
        self.log.lock().unwrap().clone()
    }
}

/// Trips `config` (open for 1 s) and lets the open period end: the next call is the first
/// probe.
pub(crate) fn tripped(config: BreakerConfig) -> Rig {
    let rig = Rig::new(config.with_open_duration(SEC));
    while rig.state() == State::Closed {
        rig.fail();
    }
    rig.clock.advance(SEC);
    rig
}
