//! The open-loop load generator: a fixed rate and a fixed total, the same requests sent to both
//! builds at the same instants, bounded concurrency and a timeout per request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::Build;
use super::dependency::lock;
use super::net::{self, HttpClient};
use super::schedule::Schedule;

/// The longest the load generator waits for one answer: longer than anything either build
/// should take, so that a request without an answer is a real failure.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);
/// The most requests in flight per build; beyond it the generator sheds (records, never sends)
/// a request rather than slowing down, so the load stays open-loop.
pub const MAX_IN_FLIGHT: usize = 1000;

/// What became of one checkout request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 200 with pricing's own price.
    Ok,
    /// 200 with the fallback price.
    Fallback,
    /// Answered with this other status.
    Failed(u16),
    /// No answer: the connection failed or the client timed out.
    NoAnswer,
    /// Not sent: too many requests were in flight.
    Shed,
}

impl Outcome {
    /// Whether the request got an HTTP answer.
    pub const fn answered(self) -> bool {
        matches!(self, Self::Ok | Self::Fallback | Self::Failed(_))
    }

    /// Whether the answer was a success (200, fallback or not).
    pub const fn succeeded(self) -> bool {
        matches!(self, Self::Ok | Self::Fallback)
    }
}

/// One checkout request as the load generator saw it.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// The build it went to.
    pub build: Build,
    /// Its number (the same number went to both builds at the same instant).
    pub id: u64,
    /// The phase it was sent in.
    pub phase: usize,
    /// When it was sent, since the start of the run.
    pub sent_at: Duration,
    /// From sending to the end of the answer (or the failure).
    pub latency: Duration,
    /// What became of it.
    pub outcome: Outcome,
}

/// Live counters for the progress line: per phase and build.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) sent: AtomicU64,
    pub(crate) answered: AtomicU64,
    pub(crate) succeeded: AtomicU64,
    pub(crate) fallback: AtomicU64,
    pub(crate) max_latency_ms: AtomicU64,
}

/// The load: `requests` requests, one every `1 / rate` seconds, each to both builds.
#[derive(Debug)]
pub(crate) struct Load {
    pub(crate) requests: u64,
    pub(crate) rate: f64,
    pub(crate) targets: [(Build, SocketAddr); 2],
}

impl Load {
    /// Sends the whole load and waits for every answer (each bounded by [`CLIENT_TIMEOUT`]).
    /// `live[phase][build]` follows along.
    pub(crate) async fn run(
        &self,
        schedule: &Schedule,
        start: Instant,
        live: Arc<Vec<[Live; 2]>>,
    ) -> Vec<Sample> {
        let client = net::client();
        let samples = Arc::new(Mutex::new(Vec::with_capacity(
            usize::try_from(self.requests * 2).unwrap_or(0),
        )));
        let limits = [
            Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        ];
        let mut tasks = tokio::task::JoinSet::new();
        let interval = Duration::from_secs_f64(1.0 / self.rate);
        for id in 0..self.requests {
            // Open loop: request `id` leaves at its own instant, however the earlier ones fare.
            let due = start + interval.mul_f64(id as f64);
            tokio::time::sleep_until(due).await;
            let sent_at = Instant::now().saturating_duration_since(start);
            let phase = schedule.phase_at(sent_at);
            for (build, addr) in self.targets {
                let counters = &live[phase][build.index()];
                counters.sent.fetch_add(1, Ordering::Relaxed);
                let Ok(permit) = limits[build.index()].clone().try_acquire_owned() else {
                    lock(&samples).push(Sample {
                        build,
                        id,
                        phase,
                        sent_at,
                        latency: Duration::ZERO,
                        outcome: Outcome::Shed,
                    });
                    continue;
                };
                let client = client.clone();
                let samples = Arc::clone(&samples);
                let live = Arc::clone(&live);
                tasks.spawn(async move {
                    let sent = Instant::now();
                    let outcome = send(&client, addr, id).await;
                    let latency = sent.elapsed();
                    drop(permit);
                    let counters = &live[phase][build.index()];
                    if outcome.answered() {
                        counters.answered.fetch_add(1, Ordering::Relaxed);
                    }
                    if outcome.succeeded() {
                        counters.succeeded.fetch_add(1, Ordering::Relaxed);
                    }
                    if outcome == Outcome::Fallback {
                        counters.fallback.fetch_add(1, Ordering::Relaxed);
                    }
                    let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
                    counters.max_latency_ms.fetch_max(ms, Ordering::Relaxed);
                    lock(&samples).push(Sample {
                        build,
                        id,
                        phase,
                        sent_at,
                        latency,
                        outcome,
                    });
                });
            }
            // Reap finished tasks as we go so that the set stays small.
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
        let mut samples = std::mem::take(&mut *lock(&samples));
        samples.sort_by_key(|s| (s.id, s.build.index()));
        samples
    }
}

/// Sends checkout request `id` to `addr` and reads the whole answer.
async fn send(client: &HttpClient, addr: SocketAddr, id: u64) -> Outcome {
    let Ok(request) = Request::post(format!("http://{addr}/checkout"))
        .header(net::REQUEST_ID, id)
        .body(Empty::new())
    else {
        return Outcome::NoAnswer;
    };
    let exchange = async {
        let response = client.request(request).await.ok()?;
        let status = response.status();
        let fallback = response
            .headers()
            .get(net::FALLBACK)
            .is_some_and(|v| v.as_bytes() == b"1");
        response.into_body().collect().await.ok()?;
        Some(match status.as_u16() {
            200 if fallback => Outcome::Fallback,
            200 => Outcome::Ok,
            other => Outcome::Failed(other),
        })
    };
    tokio::time::timeout(CLIENT_TIMEOUT, exchange)
        .await
        .ok()
        .flatten()
        .unwrap_or(Outcome::NoAnswer)
}
