//! Scripted attempts for the hedge tests: each attempt's latency and outcome, and when each
//! started, finished or was dropped, in paused time.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use staunch::classify::Class;
use staunch::hedge::{Hedge, HedgeConfig, HedgeDelay};
use tokio::time::Instant;

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// An attempt's failure, carrying the attempt's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fail {
    Transient(u32),
    Permanent(u32),
    RetryAfter(u32, Duration),
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for Fail {}

/// The classifier of the scripted failures.
pub(crate) type Classifier = fn(&Result<u32, Fail>) -> Class;

pub(crate) fn classify(result: &Result<u32, Fail>) -> Class {
    match result {
        Ok(_) => Class::Success,
        Err(Fail::Transient(_)) => Class::Transient,
        Err(Fail::Permanent(_)) => Class::Permanent,
        Err(Fail::RetryAfter(_, hint)) => Class::RetryAfter(*hint),
    }
}

/// A hedge with a fixed delay, classifying the scripted failures.
pub(crate) fn fixed(delay: Duration, max_attempts: u32) -> Hedge<Classifier> {
    Hedge::new(HedgeConfig::new(HedgeDelay::fixed(delay)).with_max_attempts(max_attempts))
        .expect("valid config")
        .classify(classify as Classifier)
}

/// What one attempt does: wait, then answer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Step {
    latency: Duration,
    outcome: Outcome,
}

#[derive(Clone, Copy, Debug)]
enum Outcome {
    Ok,
    Transient,
    Permanent,
    RetryAfter(Duration),
}

impl Step {
    /// `Ok(index)` after `latency` ms (at once, without a first `Pending`, for 0).
    pub(crate) fn ok(latency: u64) -> Self {
        Self {
            latency: ms(latency),
            outcome: Outcome::Ok,
        }
    }

    pub(crate) fn transient(latency: u64) -> Self {
        Self {
            latency: ms(latency),
            outcome: Outcome::Transient,
        }
    }

    pub(crate) fn permanent(latency: u64) -> Self {
        Self {
            latency: ms(latency),
            outcome: Outcome::Permanent,
        }
    }

    pub(crate) fn retry_after(latency: u64, hint: u64) -> Self {
        Self {
            latency: ms(latency),
            outcome: Outcome::RetryAfter(ms(hint)),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Record {
    started: Duration,
    finished: Option<Duration>,
    dropped: Option<Duration>,
}

/// The steps of a call's attempts, in order, and a log of what happened to each.
#[derive(Clone)]
pub(crate) struct Script {
    steps: Arc<Vec<Step>>,
    origin: Instant,
    log: Arc<Mutex<Vec<Record>>>,
}

impl Script {
    pub(crate) fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            steps: Arc::new(steps.into_iter().collect()),
            origin: Instant::now(),
            log: Arc::default(),
        }
    }

    /// Starts the next attempt.
    pub(crate) fn attempt(&self) -> impl Future<Output = Result<u32, Fail>> + Send + use<> {
        let mut log = self.log.lock().unwrap();
        let index = log.len();
        log.push(Record {
            started: self.origin.elapsed(),
            ..Record::default()
        });
        let step = self
            .steps
            .get(index)
            .copied()
            .unwrap_or_else(|| panic!("attempt {index} was not scripted"));
        let mut guard = Guard {
            log: self.log.clone(),
            origin: self.origin,
            index,
            done: false,
        };
        async move {
            if !step.latency.is_zero() {
                tokio::time::sleep(step.latency).await;
            }
            guard.finish();
            let n = index as u32;
            match step.outcome {
                Outcome::Ok => Ok(n),
                Outcome::Transient => Err(Fail::Transient(n)),
                Outcome::Permanent => Err(Fail::Permanent(n)),
                Outcome::RetryAfter(hint) => Err(Fail::RetryAfter(n, hint)),
            }
        }
    }

    /// When each attempt started, from the script's creation.
    pub(crate) fn started(&self) -> Vec<Duration> {
        self.log.lock().unwrap().iter().map(|r| r.started).collect()
    }

    /// When each attempt was dropped unfinished, if it was.
    pub(crate) fn dropped(&self) -> Vec<Option<Duration>> {
        self.log.lock().unwrap().iter().map(|r| r.dropped).collect()
    }

    /// Attempts started and neither finished nor dropped.
    pub(crate) fn live(&self) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.finished.is_none() && r.dropped.is_none())
            .count()
    }
}

/// Notes when its attempt finished, or, dropped before that, when it was dropped.
struct Guard {
    log: Arc<Mutex<Vec<Record>>>,
    origin: Instant,
    index: usize,
    done: bool,
}

impl Guard {
    fn finish(&mut self) {
        self.done = true;
        self.log.lock().unwrap()[self.index].finished = Some(self.origin.elapsed());
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.done
            && let Ok(mut log) = self.log.lock()
        {
            log[self.index].dropped = Some(self.origin.elapsed());
        }
    }
}

/// A tower service answering each call as `script`'s next attempt, noting the requests.
#[cfg(feature = "tower")]
pub(crate) fn scripted(
    script: &Script,
    requests: &Arc<Mutex<Vec<String>>>,
) -> impl tower::Service<
    String,
    Response = u32,
    Error = Fail,
    Future = impl Future<Output = Result<u32, Fail>> + Send + 'static,
> + Clone
+ Send
+ 'static {
    let (script, requests) = (script.clone(), requests.clone());
    tower::service_fn(move |request: String| {
        requests.lock().unwrap().push(request);
        script.attempt()
    })
}
