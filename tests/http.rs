//! hyper on magpie with no glue: the `examples/http` server driven by hyper's client on
//! magpie — keep-alive, a 1 MiB body, pipelined requests, a slow client cut by the header-read
//! timeout, and a graceful shutdown with a request in flight (finished, or cut at the end of
//! the grace period).

#[path = "../examples/http/server.rs"]
mod server;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode};
use magpie::hyper::HyperExecutor;
use magpie::net::{TcpListener, TcpStream};
use magpie::sync::Event;
use std::sync::{Arc, Mutex};

/// Every test runs on a fresh 2-worker runtime and must finish within this.
const BOUND: Duration = Duration::from_secs(20);

fn runtime() -> magpie::Runtime {
    magpie::Runtime::builder()
        .worker_threads(2)
        .build()
        .unwrap()
}

/// Starts the server; returns its address, the trigger of its shutdown, and its task.
async fn start(
    config: server::Config,
) -> (
    SocketAddr,
    Arc<Event>,
    magpie::JoinHandle<std::io::Result<server::Summary>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(Event::new());
    let trigger = stop.clone();
    let task = magpie::spawn(async move {
        server::serve(listener, async move { stop.wait().await }, config).await
    });
    (addr, trigger, task)
}

/// The requests the servers of these tests have begun to serve (`server::Config::on_request`),
/// as `path?query`: each test asks for a URI of its own, so tests running in parallel do not
/// see each other's.
static SERVED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn record_request(request: &Request<Incoming>) {
    SERVED.lock().unwrap().push(request.uri().to_string());
}

/// Waits until a server of these tests has begun to serve `uri` (the `BOUND` of the test
/// bounds the wait).
async fn until_served(uri: &str) {
    while !SERVED.lock().unwrap().iter().any(|served| served == uri) {
        magpie::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A hyper client connection (its driver spawned on magpie through `HyperExecutor`).
async fn client(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = http1::handshake(stream).await.unwrap();
    hyper::rt::Executor::execute(&HyperExecutor::current(), async move {
        let _ = conn.await;
    });
    sender
}

/// A bodiless `GET path`.
fn get_request(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "test")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

async fn get(sender: &mut SendRequest<Full<Bytes>>, path: &str) -> (StatusCode, Bytes) {
    // The connection takes the next request once the last response is done.
    sender.ready().await.unwrap();
    let request = get_request(path);
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

fn bounded<T>(rt: &magpie::Runtime, f: impl std::future::Future<Output = T>) -> T {
    rt.block_on(async {
        magpie::time::timeout(BOUND, f)
            .await
            .expect("the test finished within its bound")
    })
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let rt = runtime();
    bounded(&rt, async {
        let (addr, stop, server) = start(server::Config::default()).await;
        let mut sender = client(addr).await;
        for _ in 0..20 {
            let (status, body) = get(&mut sender, "/").await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(&body[..], b"Hello, World!");
        }
        drop(sender);
        stop.set();
        let summary = server.await.unwrap().unwrap();
        assert_eq!(summary.accepted, 1, "one connection for all 20 requests");
        assert_eq!(summary.cut, 0);
    });
}

#[test]
fn a_one_mebibyte_body_comes_back_intact() {
    let rt = runtime();
    bounded(&rt, async {
        let (addr, stop, server) = start(server::Config::default()).await;
        let mut sender = client(addr).await;
        let body: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 31 % 251) as u8).collect();
        let request = Request::post("/echo")
            .header("host", "test")
            .body(Full::new(Bytes::from(body.clone())))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let echoed = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(echoed.len(), body.len());
        assert!(echoed[..] == body[..], "the body came back byte for byte");
        drop(sender);
        stop.set();
        server.await.unwrap().unwrap();
    });
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let rt = runtime();
    bounded(&rt, async {
        let (addr, stop, server) = start(server::Config::default()).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // Three requests in one write, before any response: the last one closes.
        let requests = "GET / HTTP/1.1\r\nhost: t\r\n\r\n\
                        GET /nope HTTP/1.1\r\nhost: t\r\n\r\n\
                        GET / HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n";
        stream.write_all(requests.as_bytes()).await.unwrap();
        let mut all = Vec::new();
        stream.read_to_end(&mut all).await.unwrap();
        let text = String::from_utf8(all).unwrap();
        let statuses: Vec<&str> = text
            .match_indices("HTTP/1.1 ")
            .map(|(i, _)| &text[i + 9..i + 12])
            .collect();
        assert_eq!(statuses, ["200", "404", "200"], "in order: {text}");
        assert_eq!(text.matches("Hello, World!").count(), 2);
        stop.set();
        server.await.unwrap().unwrap();
    });
}

#[test]
fn a_slow_client_is_cut_by_the_header_read_timeout() {
    let rt = runtime();
    bounded(&rt, async {
        let config = server::Config {
            header_read_timeout: Duration::from_millis(200),
            ..server::Config::default()
        };
        let (addr, stop, server) = start(config).await;
        // Before the connection exists, so before the server's header-read timer can start
        // (hyper may start it as soon as it polls the accepted connection).
        let started = Instant::now();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // Half a request head, then nothing.
        stream.write_all(b"GET / HTTP/1.1\r\nhost:").await.unwrap();
        let mut rest = Vec::new();
        // The server gives up on us: end of stream (possibly after a 408), or a reset.
        let _ = stream.read_to_end(&mut rest).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(150),
            "not before the timeout: {waited:?}"
        );
        assert!(
            !String::from_utf8_lossy(&rest).contains("200 OK"),
            "no answer to half a request"
        );
        stop.set();
        let summary = server.await.unwrap().unwrap();
        assert_eq!(
            summary.open_at_shutdown, 0,
            "the slow connection was closed"
        );
    });
}

#[test]
fn shutdown_lets_a_request_in_flight_finish() {
    let rt = runtime();
    bounded(&rt, async {
        let config = server::Config {
            on_request: record_request,
            ..server::Config::default()
        };
        let (addr, stop, server) = start(config).await;
        let mut sender = client(addr).await;
        let in_flight = magpie::spawn(async move { get(&mut sender, "/slow?ms=300").await });
        until_served("/slow?ms=300").await;
        stop.set();
        let (status, body) = in_flight.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], b"slow");
        let summary = server.await.unwrap().unwrap();
        assert_eq!(summary.open_at_shutdown, 1);
        assert_eq!(summary.cut, 0, "it finished within the grace period");
        // And the listener is gone: new connections are refused.
        assert!(TcpStream::connect(addr).await.is_err());
    });
}

#[test]
fn shutdown_cuts_what_outlasts_the_grace_period() {
    let rt = runtime();
    bounded(&rt, async {
        let config = server::Config {
            grace: Duration::from_millis(200),
            on_request: record_request,
            ..server::Config::default()
        };
        let (addr, stop, server) = start(config).await;
        let mut sender = client(addr).await;
        let in_flight =
            magpie::spawn(async move { sender.send_request(get_request("/slow?ms=60000")).await });
        until_served("/slow?ms=60000").await;
        stop.set();
        let summary = server.await.unwrap().unwrap();
        assert_eq!(summary.open_at_shutdown, 1);
        assert_eq!(summary.cut, 1, "the minute-long request was cut");
        assert!(
            in_flight.await.unwrap().is_err(),
            "the client sees its connection closed without an answer"
        );
    });
}

/// A server runs for as long as the service does: a connection that closed leaves no task
/// behind (the server once kept every connection's task in a `TaskGroup`, finished or not,
/// until shutdown: a review counted 134 finished tasks after 200 connections).
#[test]
fn closed_connections_leave_no_task_behind() {
    const CONNECTIONS: usize = 100;
    let rt = runtime();
    let handle = rt.handle().clone();
    bounded(&rt, async {
        let (addr, stop, server) = start(server::Config::default()).await;
        for _ in 0..CONNECTIONS {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"GET / HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await.unwrap();
            assert!(response.starts_with(b"HTTP/1.1 200"), "{response:?}");
        }
        // Each connection's task ends right after its server closed the socket (what ended
        // the reads above): wait for the last to go, then look at what the runtime holds.
        let tasks = || handle.dump().tasks;
        let start = Instant::now();
        while tasks().len() > 1 && start.elapsed() < Duration::from_secs(5) {
            magpie::time::sleep(Duration::from_millis(5)).await;
        }
        let left = tasks();
        assert_eq!(
            left.len(),
            1,
            "only the server's task is left after {CONNECTIONS} closed connections: {left:?}"
        );
        stop.set();
        let summary = server.await.unwrap().unwrap();
        assert_eq!(summary.accepted, CONNECTIONS);
        assert_eq!(summary.open_at_shutdown, 0);
    });
}
