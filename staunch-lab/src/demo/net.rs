//! HTTP on loopback: a tiny server loop, the client, and one call to a dependency.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::Build;

/// The header naming the build (`naive` or `staunch`) a call comes from.
pub(crate) const BUILD: &str = "x-demo-build";
/// The header carrying the checkout request's number.
pub(crate) const REQUEST_ID: &str = "x-demo-request";
/// The header carrying the attempt number (1 for the first call).
pub(crate) const ATTEMPT: &str = "x-demo-attempt";
/// The header a checkout answer carries when it used the fallback price.
pub(crate) const FALLBACK: &str = "x-demo-fallback";
/// The precise Retry-After hint in milliseconds (the standard header has whole seconds only);
/// the same convention as some cloud APIs' `retry-after-ms`.
pub(crate) const RETRY_AFTER_MS: &str = "retry-after-ms";

/// The body of every response.
pub(crate) type Body = Full<Bytes>;
/// The HTTP client used everywhere: hyper's pooled HTTP/1 client, no TLS.
pub(crate) type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// A handler's answer: a response, or an instruction to drop the connection unanswered.
pub(crate) type Answer = Result<Response<Body>, DropConnection>;

/// Returned by a handler to close the connection without an answer (hyper closes a connection
/// whose service fails).
#[derive(Debug)]
pub(crate) struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for DropConnection {}

/// Binds `127.0.0.1:0`: an ephemeral port on loopback.
pub(crate) async fn bind() -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Serves HTTP/1 on `listener` with `handler`, one task per connection, until the runtime
/// ends.
pub(crate) async fn serve<H, Fut>(listener: TcpListener, handler: H)
where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Answer> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors or similar: back off a little rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(handler);
            // A dropped connection or a client that went away ends the connection: nothing to do.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A new pooled HTTP client.
pub(crate) fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// An answer with `status`, `body` and extra `headers`.
pub(crate) fn respond(
    status: StatusCode,
    body: &str,
    headers: &[(&'static str, String)],
) -> Answer {
    Ok(response(status, body, headers))
}

/// A response with `status`, `body` and extra `headers`.
pub(crate) fn response(
    status: StatusCode,
    body: &str,
    headers: &[(&'static str, String)],
) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, value);
        }
    }
    response
}

/// The value of header `name` as a number, if present and numeric.
pub(crate) fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The build named by the [`BUILD`] header.
pub(crate) fn header_build(headers: &HeaderMap) -> Option<Build> {
    match headers.get(BUILD)?.to_str().ok()? {
        "naive" => Some(Build::Naive),
        "staunch" => Some(Build::Staunch),
        _ => None,
    }
}

/// A dependency's successful answer.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    /// The body.
    pub(crate) body: Bytes,
    /// Whether this is a fallback rather than the dependency's answer.
    pub(crate) fallback: bool,
}

/// Why a call to a dependency failed.
#[derive(Debug)]
pub(crate) enum DepError {
    /// No HTTP answer: refused, reset, or closed before the answer.
    Transport(String),
    /// An answer that is not a success.
    Status {
        /// The status code.
        status: u16,
        /// The server's Retry-After hint, if any.
        retry_after: Option<Duration>,
    },
}

impl fmt::Display for DepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "no answer: {e}"),
            Self::Status { status, .. } => write!(f, "status {status}"),
        }
    }
}

impl std::error::Error for DepError {}

/// One call to a dependency at `addr`, for request `id`, attempt `attempt`: a success is a 2xx
/// answer with its body read.
pub(crate) async fn call_dependency(
    client: &HttpClient,
    addr: SocketAddr,
    build: Build,
    id: u64,
    attempt: u32,
) -> Result<Reply, DepError> {
    let request = Request::get(format!("http://{addr}/"))
        .header(BUILD, build.as_str())
        .header(REQUEST_ID, id)
        .header(ATTEMPT, attempt)
        .body(Empty::new())
        .map_err(|e| DepError::Transport(e.to_string()))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| DepError::Transport(e.to_string()))?;
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| DepError::Transport(e.to_string()))?
        .to_bytes();
    if status.is_success() {
        Ok(Reply {
            body,
            fallback: false,
        })
    } else {
        Err(DepError::Status {
            status: status.as_u16(),
            retry_after,
        })
    }
}

/// The server's hint: `retry-after-ms` if present, else `Retry-After` in whole seconds.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = header_u64(headers, RETRY_AFTER_MS) {
        return Some(Duration::from_millis(ms));
    }
    header_u64(headers, "retry-after").map(Duration::from_secs)
}
