//! HTTP workload: `http_hello`, a hyper 1.x HTTP/1.1 hello-world server on each runtime with
//! hyper's header-read timeout on, loaded by the same blocking client for every runtime.
//!
//! The server: an accept loop spawned on the runtime, one task per connection running
//! `http1::Builder::serve_connection` with `header_read_timeout(30 s)` and the runtime's own
//! timer: hyper-util's `TokioIo` and `TokioTimer` on tokio, smol-hyper's `FuturesIo` and
//! `SmolTimer` on async-executor, and magpie's own hyper support on magpie (its `TcpStream`
//! implements hyper's I/O traits; `magpie::hyper::HyperTimer`), no adapter.
//!
//! The client does not run on the runtime under test: [`CLIENT_THREADS`] std threads, each
//! looping over its share of the [`CONNECTIONS`] keep-alive connections with blocking
//! `std::net::TcpStream`s, one request at a time per connection. Every response must be
//! `200` with the body `Hello, World!`. Each run's requests per second and p99 latency are
//! left for [`take_last_stats`].

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::rt::Timer;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};

use crate::{AsyncExecutorPool, Family, Size, Workload};

/// The HTTP workloads.
pub fn workloads() -> Vec<Workload> {
    vec![Workload {
        name: "http_hello",
        family: Family::Io,
        magpie: http_hello::magpie,
        tokio: http_hello::tokio,
        async_executor: http_hello::async_executor,
    }]
}

/// Keep-alive connections the client opens, in all.
pub const CONNECTIONS: usize = 64;

/// The client's threads; each drives `CONNECTIONS / CLIENT_THREADS` connections.
pub const CLIENT_THREADS: usize = 4;

/// The server's header-read timeout: it never fires within a run.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The one request the client sends, again and again.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// The body of every response.
const BODY: &[u8] = b"Hello, World!";

const LOOPBACK: &str = "127.0.0.1:0";

/// Requests each connection makes: enough for about a second of load on two cores.
fn requests_per_connection(size: Size) -> usize {
    size.pick(500, 20)
}

/// What the client saw in one `http_hello` run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestStats {
    /// Requests completed per second of the client's run (connecting included).
    pub requests_per_second: f64,
    /// The 99th percentile of the requests' latencies (request written to response read),
    /// in seconds.
    pub p99_latency: f64,
}

/// What a run left for [`take_last_stats`]: every request's latency, unsorted, and the run's
/// length.
type Recorded = (Vec<Duration>, Duration);

thread_local! {
    static LAST_RUN: Cell<Option<Recorded>> = const { Cell::new(None) };
}

/// The stats of the last `http_hello` or `spawn_await_one` run on this thread, taken: `None` if
/// there was none since the last call. `compare` reads them after each timed run: the sort
/// that the p99 needs happens here, outside the time measured.
pub fn take_last_stats() -> Option<RequestStats> {
    let (mut latencies, elapsed) = LAST_RUN.with(Cell::take)?;
    latencies.sort_unstable();
    // The nearest-rank p99: the smallest latency at least 99 % of the requests did not exceed.
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    Some(RequestStats {
        requests_per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p99_latency: p99.as_secs_f64(),
    })
}

/// The service: `200 OK`, `Hello, World!`, whatever the request.
async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(BODY))))
}

/// Serves one connection until the client closes it.
///
/// # Panics
///
/// When the connection fails (the header-read timeout firing among others).
async fn serve<I, T>(io: I, timer: T)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    T: Timer + Send + Sync + 'static,
{
    let connection = http1::Builder::new()
        .timer(timer)
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(io, service_fn(hello));
    connection.await.expect("http_hello: connection failed");
}

/// The accept loop: accepts the client's [`CONNECTIONS`] connections, hands each to `start`
/// (which spawns its [`serve`] task and returns a future of that task's end), then waits for
/// them all, which end when the client closes them.
async fn accept_all<S, A, J>(mut accept: impl FnMut() -> A, mut start: impl FnMut(S) -> J)
where
    A: Future<Output = io::Result<(S, SocketAddr)>>,
    J: Future<Output = ()>,
{
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let (stream, _) = accept().await.expect("http_hello: accept");
        connections.push(start(stream));
    }
    for connection in connections {
        connection.await;
    }
}

/// `http_hello` on each runtime: the server on the runtime, the client on threads of its own
/// started by the calling thread.
pub mod http_hello {
    use super::*;

    /// On magpie: `magpie::net::TcpStream` as it is (it implements hyper's I/O
    /// traits), and `magpie::hyper::HyperTimer`.
    pub fn magpie(rt: &magpie::Runtime, size: Size) {
        use magpie::net::TcpListener;
        let listener = rt.block_on(TcpListener::bind(LOOPBACK)).expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let server = rt.spawn(async move {
            let start = |stream: magpie::net::TcpStream| {
                stream.set_nodelay(true).expect("nodelay");
                let task = magpie::spawn(serve(stream, magpie::hyper::HyperTimer));
                async { task.await.expect("http_hello: connection task failed") }
            };
            accept_all(|| listener.accept(), start).await
        });
        run_client(addr, size);
        rt.block_on(server).expect("http_hello: server task failed");
    }

    /// On tokio: hyper-util's `TokioIo` and `TokioTimer`.
    pub fn tokio(rt: &tokio::runtime::Runtime, size: Size) {
        use hyper_util::rt::{TokioIo, TokioTimer};
        use tokio::net::TcpListener;
        let listener = rt.block_on(TcpListener::bind(LOOPBACK)).expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let server = rt.spawn(async move {
            let start = |stream: tokio::net::TcpStream| {
                stream.set_nodelay(true).expect("nodelay");
                let task = tokio::spawn(serve(TokioIo::new(stream), TokioTimer::new()));
                async { task.await.expect("http_hello: connection task failed") }
            };
            accept_all(|| listener.accept(), start).await
        });
        run_client(addr, size);
        rt.block_on(server).expect("http_hello: server task failed");
    }

    /// On async-executor: smol-hyper's `FuturesIo` over `async_net::TcpStream`, and its
    /// `SmolTimer` (async-io's timer).
    pub fn async_executor(pool: &AsyncExecutorPool, size: Size) {
        use async_net::TcpListener;
        use smol_hyper::rt::{FuturesIo, SmolTimer};
        let listener = pool.block_on(TcpListener::bind(LOOPBACK)).expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let ex = pool.executor().clone();
        let server = pool.spawn(async move {
            let start = |stream: async_net::TcpStream| {
                stream.set_nodelay(true).expect("nodelay");
                ex.spawn(serve(FuturesIo::new(stream), SmolTimer::new()))
            };
            accept_all(|| listener.accept(), start).await
        });
        run_client(addr, size);
        pool.block_on(server);
    }
}

/// The client, the same for every runtime: [`CLIENT_THREADS`] std threads with blocking
/// sockets, [`CONNECTIONS`] keep-alive connections in all. Leaves the run's
/// [`RequestStats`] for [`take_last_stats`].
///
/// # Panics
///
/// On a socket error, and when a response is not `200` with the body `Hello, World!`.
fn run_client(addr: SocketAddr, size: Size) {
    let requests = requests_per_connection(size);
    let start = Instant::now();
    let threads: Vec<_> = (0..CLIENT_THREADS)
        .map(|_| thread::spawn(move || client_thread(addr, requests)))
        .collect();
    let mut latencies: Vec<Duration> = Vec::with_capacity(CONNECTIONS * requests);
    for thread in threads {
        latencies.extend(thread.join().expect("http_hello: client thread panicked"));
    }
    let elapsed = start.elapsed();
    assert_eq!(latencies.len(), CONNECTIONS * requests);
    record_stats(latencies, elapsed);
}

/// Leaves what a run that served `latencies.len()` requests in `elapsed` saw, for
/// [`take_last_stats`] (also used by the scheduler's `spawn_await_one`, whose requests are
/// subtasks awaited by their spawner). Only a move: the run's timing in `compare` includes
/// this call, and a sort here would add a millisecond to every runtime alike, pulling the
/// ratios toward 1.
///
/// # Panics
///
/// When `latencies` is empty.
pub fn record_stats(latencies: Vec<Duration>, elapsed: Duration) {
    assert!(!latencies.is_empty(), "a run with no requests has no stats");
    LAST_RUN.with(|last| last.set(Some((latencies, elapsed))));
}

/// One client thread: opens its connections, then sends `requests` rounds of one request on
/// each; returns every request's latency. The connections close when it returns.
fn client_thread(addr: SocketAddr, requests: usize) -> Vec<Duration> {
    let mut streams: Vec<TcpStream> = (0..CONNECTIONS / CLIENT_THREADS)
        .map(|_| {
            let stream = TcpStream::connect(addr).expect("http_hello: connect");
            stream.set_nodelay(true).expect("nodelay");
            // A hung server fails the run instead of hanging it.
            stream
                .set_read_timeout(Some(Duration::from_secs(60)))
                .expect("read timeout");
            stream
        })
        .collect();
    let mut latencies = Vec::with_capacity(streams.len() * requests);
    let mut buf = Vec::with_capacity(1024);
    for _ in 0..requests {
        for stream in &mut streams {
            let start = Instant::now();
            stream.write_all(REQUEST).expect("http_hello: write");
            read_response(stream, &mut buf);
            latencies.push(start.elapsed());
        }
    }
    latencies
}

/// Reads one whole response (status line, headers, `Content-Length` body) into `buf` and
/// checks it.
///
/// # Panics
///
/// When the response is not `200` with the body `Hello, World!`, or more bytes came than it
/// holds (the client never pipelines, so none should).
fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) {
    buf.clear();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        read_more(stream, buf);
    };
    let head = std::str::from_utf8(&buf[..head_end]).expect("http_hello: head not UTF-8");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    assert!(
        status.starts_with("HTTP/1.1 200 "),
        "http_hello: status {status:?}"
    );
    let length: usize = lines
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| {
                value
                    .trim()
                    .parse()
                    .expect("http_hello: bad Content-Length")
            })
        })
        .expect("http_hello: no Content-Length");
    while buf.len() < head_end + length {
        read_more(stream, buf);
    }
    assert_eq!(&buf[head_end..], BODY, "http_hello: wrong body");
}

/// Appends what one `read` gives to `buf`.
///
/// # Panics
///
/// On an error or end of file.
fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 512];
    let n = stream.read(&mut chunk).expect("http_hello: read");
    assert!(n > 0, "http_hello: connection closed mid-response");
    buf.extend_from_slice(&chunk[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_hello_runs_on_every_runtime() {
        let runtimes = crate::Runtimes::new(1);
        for kind in crate::RuntimeKind::ALL {
            workloads()[0].run(&runtimes, kind, Size::Quick);
            let stats = take_last_stats().expect("no stats recorded");
            assert!(stats.requests_per_second > 0.0 && stats.p99_latency > 0.0);
            assert_eq!(take_last_stats(), None);
        }
    }
}
