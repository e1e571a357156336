//! The soak under network load (docs/reliability.md): a server and many client connections in
//! one process, for a chosen time, with random timeouts, connection resets and aborted client
//! tasks. At the end every request is accounted for and the process is back where it started.
//!
//! ```text
//! cargo run --release --example net_soak                        # 1 000 connections, 60 s
//! cargo run --release --example net_soak -- --quick             # 100 connections, 5 s (CI)
//! cargo run --release --example net_soak -- --seconds 600 --seed 7
//! ```
//!
//! Each client loops over requests: a 16-byte request (its id and how long the server should
//! take, up to 2 ms), answered with the id. A request may be sent under a timeout shorter than
//! the server's delay (the client then drops the connection and reconnects), the connection may
//! be reset mid-request (`SO_LINGER` 0: an RST), or a supervisor may abort the whole client task
//! mid-request. Checks at the end (exit status 1 if any fails):
//!
//! - every request sent is exactly one of: answered, timed out, reset, aborted — none lost (a
//!   plain request that got no answer in 10 s would be "lost");
//! - every answer carried its request's id, and the server gave at least as many answers as
//!   the clients got;
//! - file descriptors and threads are back to their level before the runtime started, and the
//!   resident memory at the end is within 20 % of its level after the warm-up (the first fifth).

use std::collections::HashMap;
use std::io;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use magpie::net::{TcpListener, TcpStream};
use magpie::prelude::{AsyncReadExt, AsyncWriteExt};

struct Options {
    connections: usize,
    seconds: u64,
    seed: u64,
    workers: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        connections: 1_000,
        seconds: 60,
        seed: 20261204,
        workers: 2,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--quick" {
            o.connections = 100;
            o.seconds = 5;
            continue;
        }
        let value: u64 = args
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or(format!("{arg} needs a number (try --help)"))?;
        match arg.as_str() {
            "--connections" if value > 0 => o.connections = value as usize,
            "--seconds" if value > 0 => o.seconds = value,
            "--seed" => o.seed = value,
            "--workers" if value > 0 => o.workers = value as usize,
            _ => {
                return Err("usage: net_soak [--quick] [--connections N] [--seconds S] \
                            [--seed N] [--workers N] (counts at least 1)"
                    .into())
            }
        }
    }
    Ok(o)
}

// SplitMix64: a seeded program mix, replayable with `--seed`.
#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

/// What became of a request, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Fate {
    Answered,
    TimedOut,
    Reset,
    Aborted,
    Lost,
}

#[derive(Default)]
struct Ledger {
    /// Requests sent and not yet settled, by id, with their client.
    in_flight: Mutex<HashMap<u64, usize>>,
    fates: Mutex<HashMap<Fate, u64>>,
    sent: AtomicU64,
    /// Requests the server read and answered (or tried to: the client may be gone).
    served: AtomicU64,
}

impl Ledger {
    fn settle(&self, id: u64, fate: Fate) {
        if self.in_flight.lock().unwrap().remove(&id).is_some() {
            *self.fates.lock().unwrap().entry(fate).or_default() += 1;
        }
    }
}

/// Settles the client's request in flight as aborted if the task is dropped mid-request.
struct InFlight<'a> {
    ledger: &'a Ledger,
    id: Option<u64>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.ledger.settle(id, Fate::Aborted);
        }
    }
}

async fn serve(stream: TcpStream, ledger: Arc<Ledger>) {
    let (mut reader, mut writer) = (stream.clone(), stream);
    let mut request = [0u8; 16];
    while reader.read_exact(&mut request).await.is_ok() {
        let id = u64::from_le_bytes(request[..8].try_into().unwrap());
        let delay = u64::from_le_bytes(request[8..].try_into().unwrap());
        magpie::time::sleep(Duration::from_micros(delay)).await;
        // Counted before the answer goes out, so that no client can have it before we count.
        ledger.served.fetch_add(1, Ordering::Relaxed);
        if writer.write_all(&id.to_le_bytes()).await.is_err() {
            return; // the client went away (reset or timed out)
        }
    }
}

/// Sets `SO_LINGER` to 0 so that closing the socket sends an RST instead of a FIN.
fn reset_on_close(stream: &TcpStream) {
    stream
        .set_reset_on_close(true)
        .expect("setsockopt(SO_LINGER)");
}

async fn client(
    index: usize,
    addr: std::net::SocketAddr,
    ledger: Arc<Ledger>,
    next_id: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    mut rng: Rng,
) -> io::Result<()> {
    let mut stream: Option<TcpStream> = None;
    while !stop.load(Ordering::Relaxed) {
        let s = match &mut stream {
            Some(s) => s,
            None => stream.insert(TcpStream::connect(addr).await?),
        };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let delay = rng.below(2_000);
        let mut request = [0u8; 16];
        request[..8].copy_from_slice(&id.to_le_bytes());
        request[8..].copy_from_slice(&delay.to_le_bytes());
        ledger.in_flight.lock().unwrap().insert(id, index);
        ledger.sent.fetch_add(1, Ordering::Relaxed);
        let mut guard = InFlight {
            ledger: &ledger,
            id: Some(id),
        };
        let roll = rng.below(100);
        if roll < 3 {
            // Reset mid-request. A failed write is a lost request, not a reset.
            let fate = match s.write_all(&request).await {
                Ok(()) => Fate::Reset,
                Err(_) => Fate::Lost,
            };
            reset_on_close(s);
            stream = None;
            ledger.settle(guard.id.take().unwrap(), fate);
            continue;
        }
        // 5 %: a timeout shorter than the server's delay, which it most likely misses.
        let limit = if roll < 8 {
            Duration::from_micros(delay / 4)
        } else {
            Duration::from_secs(10)
        };
        let exchange = async {
            s.write_all(&request).await?;
            let mut answer = [0u8; 8];
            s.read_exact(&mut answer).await?;
            io::Result::Ok(u64::from_le_bytes(answer))
        };
        let fate = match magpie::time::timeout(limit, exchange).await {
            Ok(Ok(answer)) if answer == id => Fate::Answered,
            Ok(Ok(_)) | Ok(Err(_)) => Fate::Lost,
            Err(_) if limit < Duration::from_secs(10) => {
                stream = None; // the answer may still come: start over on a new connection
                Fate::TimedOut
            }
            Err(_) => Fate::Lost,
        };
        ledger.settle(guard.id.take().unwrap(), fate);
    }
    Ok(())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

fn rss_kb() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
        * 4
}

fn main() -> ExitCode {
    let o = parse_args().unwrap_or_else(|msg| {
        eprintln!("{msg}");
        std::process::exit(2)
    });
    // The process-wide threads (the reactor and its timer store) outlive runtimes by design:
    // start them before the baseline.
    magpie::block_on(magpie::time::sleep(Duration::from_millis(1)));
    let (fds_before, threads_before) = (open_fds(), threads());

    let ledger = Arc::new(Ledger::default());
    let rt = magpie::Runtime::builder()
        .worker_threads(o.workers)
        .build()
        .expect("runtime");
    let start = Instant::now();
    let (warm_rss, end_rss) = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let server = magpie::spawn({
            let ledger = ledger.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    drop(magpie::spawn(serve(stream, ledger.clone())));
                }
            }
        });
        let stop = Arc::new(AtomicBool::new(false));
        let next_id = Arc::new(AtomicU64::new(0));
        let mut seeds = Rng(o.seed);
        let spawn_client = |index: usize, rng: Rng| {
            magpie::spawn(client(
                index,
                addr,
                ledger.clone(),
                next_id.clone(),
                stop.clone(),
                rng,
            ))
        };
        let mut clients: Vec<_> = (0..o.connections)
            .map(|i| spawn_client(i, seeds.fork()))
            .collect();
        // The supervisor: every few milliseconds, abort a random client and start another.
        let deadline = start + Duration::from_secs(o.seconds);
        let warm_up = start + Duration::from_secs(o.seconds) / 5;
        let mut warm_rss = None;
        while Instant::now() < deadline {
            magpie::time::sleep(Duration::from_millis(5)).await;
            let victim = seeds.below(clients.len() as u64) as usize;
            clients[victim].abort();
            let old = std::mem::replace(&mut clients[victim], spawn_client(victim, seeds.fork()));
            match old.await {
                Ok(result) => result.expect("client I/O"),
                Err(err) => assert!(err.is_cancelled(), "a client failed: {err}"),
            }
            if warm_rss.is_none() && Instant::now() >= warm_up {
                warm_rss = Some(rss_kb());
            }
        }
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            match client.await {
                Ok(result) => result.expect("client I/O"),
                Err(err) => assert!(err.is_cancelled(), "a client failed: {err}"),
            }
        }
        server.abort();
        let _ = server.await;
        let warm_rss = warm_rss.expect("the warm-up ended before the run did");
        (warm_rss, rss_kb())
    });
    drop(rt);
    let elapsed = start.elapsed();
    // A joined thread may linger in /proc for a moment while it exits.
    let settle = Instant::now() + Duration::from_secs(5);
    while threads() != threads_before && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(10));
    }

    let fates = ledger.fates.lock().unwrap().clone();
    let count = |fate| fates.get(&fate).copied().unwrap_or(0);
    let sent = ledger.sent.load(Ordering::Relaxed);
    let settled: u64 = fates.values().sum();
    let unsettled = ledger.in_flight.lock().unwrap().len() as u64;
    let (fds_after, threads_after) = (open_fds(), threads());
    println!(
        "net_soak: seed={} {:.1}s connections={} sent={sent} answered={} timed_out={} reset={} \
         aborted={} lost={} unsettled={unsettled} served={} rss_kb warm-up={warm_rss} \
         end={end_rss} ({:+.1} %) fds {fds_before}->{fds_after} threads \
         {threads_before}->{threads_after}",
        o.seed,
        elapsed.as_secs_f64(),
        o.connections,
        count(Fate::Answered),
        count(Fate::TimedOut),
        count(Fate::Reset),
        count(Fate::Aborted),
        count(Fate::Lost),
        ledger.served.load(Ordering::Relaxed),
        100.0 * (end_rss as f64 - warm_rss as f64) / warm_rss.max(1) as f64,
    );
    let mut ok = true;
    let mut check = |passed: bool, what: &str| {
        if !passed {
            eprintln!("net_soak: FAILED: {what}");
            ok = false;
        }
    };
    check(count(Fate::Lost) == 0, "no request lost");
    check(
        unsettled == 0 && settled == sent,
        "every request answered, timed out, reset or aborted",
    );
    check(count(Fate::Answered) > 0, "requests were answered");
    check(
        count(Fate::Answered) <= ledger.served.load(Ordering::Relaxed),
        "no more answers than the server gave",
    );
    check(fds_after == fds_before, "file descriptors back to baseline");
    check(threads_after == threads_before, "threads back to baseline");
    check(
        end_rss * 5 <= warm_rss * 6,
        "memory within 20 % of its warm-up level",
    );
    if ok {
        println!("net_soak: OK");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
