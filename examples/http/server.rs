//! The server of `examples/http`: hyper 1.x on magpie with no glue crate, one `TaskGroup` for
//! the connections, and a graceful shutdown. Also compiled into `tests/http.rs`.

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
use magpie::task::TaskGroup;

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

/// Serves `listener` until `shutdown` completes, then stops accepting, lets the open
/// connections finish their in-flight requests for at most `config.grace`, cuts the rest, and
/// says what it did.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    config: Config,
) -> io::Result<Summary> {
    let stopping = Arc::new(Event::new());
    let open = Arc::new(AtomicUsize::new(0));
    let mut connections = TaskGroup::<(), Infallible>::new();
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
        open.fetch_add(1, Ordering::SeqCst);
        let (stopping, open) = (stopping.clone(), open.clone());
        connections.spawn(async move {
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
            let result = match future::or(async { Some(conn.as_mut().await) }, async {
                stopping.wait().await;
                None
            })
            .await
            {
                Some(result) => result,
                None => {
                    // Shutdown: finish the request in flight, take no other.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            // A client that goes away or times out is routine for a server: not a failure.
            if let Err(err) = result {
                if !err.is_incomplete_message() && !err.is_timeout() {
                    eprintln!("http: connection error: {err}");
                }
            }
            open.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        });
    }
    drop(listener);
    summary.open_at_shutdown = open.load(Ordering::SeqCst);
    stopping.set();
    if magpie::time::timeout(config.grace, connections.join())
        .await
        .is_err()
    {
        // The join (and with it the group) was dropped: the group cancels what is left.
        summary.cut = open.load(Ordering::SeqCst);
    }
    Ok(summary)
}
