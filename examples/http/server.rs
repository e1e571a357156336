//! The server of `examples/http`: hyper 1.x on magpie with no glue crate, a task per
//! connection, and a graceful shutdown. Also compiled into `tests/http.rs`.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use magpie::hyper::HyperTimer;
use magpie::net::TcpListener;
use magpie::sync::Event;

/// How the server behaves.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// A client that has not sent a whole request head this long after connecting (or after
    /// its last response, on a kept-alive connection) is disconnected.
    pub header_read_timeout: Duration,
    /// How long in-flight requests may take to finish once shutdown starts.
    pub grace: Duration,
    /// Called with each request as it arrives, before it is routed: a place for access
    /// logging, and how the tests learn that a request is being served.
    pub on_request: fn(&Request<Incoming>),
}

impl Default for Config {
    fn default() -> Config {
        Config {
            header_read_timeout: Duration::from_secs(30),
            grace: Duration::from_secs(10),
            on_request: |_| {},
        }
    }
}

/// What a shutdown did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Connections accepted over the server's life.
    pub accepted: usize,
    /// Connections still open when shutdown started.
    pub open_at_shutdown: usize,
    /// Of those, connections cut at the end of the grace period (their requests unfinished).
    pub cut: usize,
}

/// The routes: `GET /` says hello, `POST /echo` sends the body back, `GET /slow?ms=N` answers
/// after N milliseconds.
async fn route(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET, "/") => Response::new(Full::new(Bytes::from_static(b"Hello, World!"))),
        (&Method::POST, "/echo") => match request.into_body().collect().await {
            Ok(body) => Response::new(Full::new(body.to_bytes())),
            Err(_) => status(StatusCode::BAD_REQUEST),
        },
        (&Method::GET, "/slow") => {
            let ms = request
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("ms="))
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(100);
            magpie::time::sleep(Duration::from_millis(ms)).await;
            Response::new(Full::new(Bytes::from_static(b"slow")))
        }
        _ => status(StatusCode::NOT_FOUND),
    };
    Ok(response)
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}

/// The open connections, as the server and each connection's task see them: a count, and
/// the two steps of the shutdown they race. Connections are spawned detached and counted, not
/// kept: a server's tasks come and go for as long as it runs, and a finished one must leave
/// nothing behind (a `TaskGroup`, which keeps its tasks' outputs until `join`, would grow with
/// every connection ever made).
#[derive(Default)]
struct Connections {
    /// Connections open, with [`SHUTTING_DOWN`] added once shutdown starts: one word, so a
    /// connection that closes and the shutdown that starts agree on which of them was last.
    open: AtomicUsize,
    /// Set when shutdown starts: finish the request in flight, take no other.
    stopping: Event,
    /// Set when the grace period ends: drop the connection where it stands.
    cut: Event,
    /// Set by the last connection to close once shutdown has started.
    all_closed: Event,
}

/// The flag in [`Connections::open`]: shutdown has started.
const SHUTTING_DOWN: usize = 1 << (usize::BITS - 1);

/// One open connection's place in the count, given back when its task ends however it ends
/// (a panic in a handler too, or the runtime's shutdown dropping the task).
struct Open(Arc<Connections>);

impl Open {
    fn new(connections: &Arc<Connections>) -> Open {
        // Relaxed: only the accept loop adds, and it is the one that starts the shutdown.
        connections.open.fetch_add(1, Ordering::Relaxed);
        Open(connections.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        // The last to close after the shutdown began wakes it; one that closes before, the
        // shutdown's own `fetch_or` sees as closed.
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == SHUTTING_DOWN | 1 {
            self.0.all_closed.set();
        }
    }
}

/// Serves `listener` until `shutdown` completes, then stops accepting, lets the open
/// connections finish their in-flight requests for at most `config.grace`, cuts the rest, and
/// says what it did.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    config: Config,
) -> io::Result<Summary> {
    let connections = Arc::new(Connections::default());
    let mut summary = Summary::default();
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            shutdown.as_mut().await;
            None
        })
        .await;
        let Some(accepted) = accepted else { break };
        let (stream, _peer) = match accepted {
            Ok(pair) => pair,
            // A connection that failed before we took it (reset, out of descriptors): keep
            // serving the others.
            Err(err) => {
                eprintln!("http: accept failed: {err}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        summary.accepted += 1;
        let open = Open::new(&connections);
        // Detached: the handle is dropped, the task runs on; `open` counts it until it ends.
        drop(magpie::spawn(async move {
            let connections = &open.0;
            let conn = http1::Builder::new()
                .timer(HyperTimer)
                .header_read_timeout(config.header_read_timeout)
                .serve_connection(
                    stream,
                    service_fn(|request| {
                        (config.on_request)(&request);
                        route(request)
                    }),
                );
            let mut conn = pin!(conn);
            let served = future::or(async { Some(conn.as_mut().await) }, async {
                connections.stopping.wait().await;
                None
            })
            .await;
            let result = match served {
                Some(result) => result,
                None => {
                    // Shutdown: finish the request in flight, take no other; until cut.
                    conn.as_mut().graceful_shutdown();
                    let finished = future::or(async { Some(conn.as_mut().await) }, async {
                        connections.cut.wait().await;
                        None
                    });
                    match finished.await {
                        Some(result) => result,
                        None => return,
                    }
                }
            };
            // A client that goes away or times out is routine for a server: not a failure.
            if let Err(err) = result {
                if !err.is_incomplete_message() && !err.is_timeout() {
                    eprintln!("http: connection error: {err}");
                }
            }
        }));
    }
    drop(listener);
    summary.open_at_shutdown =
        connections.open.fetch_or(SHUTTING_DOWN, Ordering::AcqRel) & !SHUTTING_DOWN;
    connections.stopping.set();
    if summary.open_at_shutdown > 0
        && magpie::time::timeout(config.grace, connections.all_closed.wait())
            .await
            .is_err()
    {
        // The grace period is over: what is still open is cut, and counted.
        summary.cut = connections.open.load(Ordering::Acquire) & !SHUTTING_DOWN;
        connections.cut.set();
        connections.all_closed.wait().await;
    }
    Ok(summary)
}
