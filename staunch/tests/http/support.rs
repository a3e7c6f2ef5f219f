//! Shared helpers for the HTTP tests: a fault-injecting loopback server, a real hyper-util
//! client stack, and retry policies with exact delays.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use staunch::backoff::{Backoff, Jitter};
use staunch::http::{
    HttpClassifier, IdempotencyGate, PropagateDeadline, PropagateDeadlineLayer,
    ReceiveDeadlineLayer,
};
use staunch::retry::{RetryLayer, RetryService};
use staunch::{Deadline, Retry, RetryConfig};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::{Layer, ServiceBuilder, service_fn};

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Constant delays with no jitter, classifying with [`HttpClassifier`].
pub(crate) fn http_retry(delay: Duration, max_attempts: u32) -> Retry<HttpClassifier> {
    Retry::new(
        RetryConfig::new()
            .with_max_attempts(max_attempts)
            .with_backoff(Backoff::constant(delay).with_jitter(Jitter::None))
            .with_max_retry_after(Duration::from_secs(60)),
    )
    .expect("valid config")
    .classify(HttpClassifier::new())
}

/// What the server does with the next request.
#[derive(Clone, Debug)]
pub(crate) enum Fault {
    /// Answer with this status and headers.
    Status(u16, Vec<(&'static str, String)>),
    /// Wait (on the real clock), then answer with this status.
    Delay(Duration, u16),
    /// Close the connection without answering, after reading the request.
    Drop,
}

impl Fault {
    pub(crate) fn status(status: u16) -> Self {
        Self::Status(status, Vec::new())
    }
}

/// What the server saw of one request.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) method: Method,
    pub(crate) timeout_header: Option<String>,
    /// `Deadline::current()`'s remaining time in the handler, as the request arrived.
    pub(crate) deadline_left: Option<Duration>,
    /// The same after a [`Fault::Delay`].
    pub(crate) deadline_left_after_delay: Option<Duration>,
}

/// A loopback HTTP/1 server on an ephemeral port that answers from a script (then 200s), runs
/// every request through a [`ReceiveDeadlineLayer`], and records what it saw. Stopped on drop.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub(crate) async fn start(script: Vec<Fault>, max_timeout: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let kill = Arc::new(Notify::new());
                    let handler = service_fn({
                        let (seen, script, kill) = (seen.clone(), script.clone(), kill.clone());
                        move |request: Request<Incoming>| {
                            handle(request, seen.clone(), script.clone(), kill.clone())
                        }
                    });
                    let service = ServiceBuilder::new()
                        .layer(ReceiveDeadlineLayer::new().with_max_timeout(max_timeout))
                        .service(handler);
                    tokio::spawn(async move {
                        let connection = hyper::server::conn::http1::Builder::new()
                            .serve_connection(
                                TokioIo::new(stream),
                                TowerToHyperService::new(service),
                            );
                        // Dropping the connection future closes the socket, mid-request.
                        tokio::select! {
                            _ = connection => {}
                            () = kill.notified() => {}
                        }
                    });
                }
            }
        });
        Self { addr, seen, task }
    }

    /// Every request seen so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests arrived.
    pub(crate) fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub(crate) fn uri(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    request: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Fault>>>,
    kill: Arc<Notify>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let fault = script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Fault::status(200));
    let mut record = Seen {
        method: request.method().clone(),
        timeout_header: request
            .headers()
            .get("grpc-timeout")
            .map(|v| v.to_str().unwrap_or("<binary>").to_owned()),
        deadline_left: Deadline::current().map(|d| d.remaining()),
        deadline_left_after_delay: None,
    };
    let index = {
        let mut seen = seen.lock().unwrap();
        seen.push(record.clone());
        seen.len() - 1
    };
    let (status, headers) = match fault {
        Fault::Status(status, headers) => (status, headers),
        Fault::Delay(delay, status) => {
            tokio::time::sleep(delay).await;
            record.deadline_left_after_delay = Deadline::current().map(|d| d.remaining());
            seen.lock().unwrap()[index] = record;
            (status, Vec::new())
        }
        Fault::Drop => {
            kill.notify_one();
            std::future::pending::<()>().await;
            unreachable!("the connection is gone");
        }
    };
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(name, value);
    }
    Ok(response
        .body(Full::new(Bytes::from_static(b"ok")))
        .expect("valid response"))
}

pub(crate) type HyperClient = Client<HttpConnector, Full<Bytes>>;

/// A real hyper-util client.
pub(crate) fn hyper_client() -> HyperClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// The client stack under test: retry (HTTP classification, idempotency gate) over deadline
/// propagation over the client `S`.
pub(crate) type Stack<S> = RetryService<PropagateDeadline<S>, HttpClassifier, IdempotencyGate>;

pub(crate) fn stack<S>(retry: Retry<HttpClassifier>, client: S) -> Stack<S> {
    let inner = PropagateDeadlineLayer::new().layer(client);
    RetryLayer::new(retry)
        .with_retry_request(IdempotencyGate::new())
        .layer(inner)
}

pub(crate) fn request(method: Method, uri: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::new(Bytes::from_static(b"{\"order\":1}")))
        .expect("valid request")
}

/// A port with nothing listening on it: bound, then closed.
pub(crate) async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("address")
}
