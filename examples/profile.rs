//! A service-shaped program to profile (docs/profiling.md): clients send requests over loopback
//! TCP, the server hashes each one (the "user code", `checksum`) and answers; at the end it
//! prints the throughput and, from the runtime's metrics, where the workers' time went.
//!
//! ```text
//! cargo run --profile profiling --example profile -- --seconds 5 --workers 2
//! ```
//!
//! Options: `--seconds S` (5), `--workers N` (every core), `--connections C` (32), `--work W`
//! (hash rounds per request, 2 000: the share of your code in the profile).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use magpie::net::{TcpListener, TcpStream};
use magpie::prelude::{AsyncReadExt, AsyncWriteExt};
use magpie::{Builder, RuntimeMetrics};

/// Bytes per request.
const REQUEST: usize = 64;

struct Options {
    seconds: u64,
    workers: Option<usize>,
    connections: usize,
    work: u32,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        seconds: 5,
        workers: None,
        connections: 32,
        work: 2_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .ok_or(format!("{arg} needs a value (try --help)"));
        let number = |what: &str| -> Result<u64, String> {
            value
                .clone()?
                .parse()
                .map_err(|e| format!("{what}: {e} (try --help)"))
        };
        match arg.as_str() {
            "--seconds" => o.seconds = number("--seconds")?,
            "--workers" => o.workers = Some(number("--workers")? as usize),
            "--connections" => o.connections = number("--connections")? as usize,
            "--work" => o.work = number("--work")? as u32,
            "-h" | "--help" => {
                return Err(
                    "usage: profile [--seconds S] [--workers N] [--connections C] \
                            [--work HASH_ROUNDS]"
                        .into(),
                )
            }
            a => return Err(format!("unexpected argument {a:?} (try --help)")),
        }
    }
    if o.workers == Some(0) || o.connections == 0 {
        return Err("--workers and --connections must be at least 1".into());
    }
    Ok(o)
}

/// The "user code" of this service: `rounds` rounds of FNV-1a over the request. Not inlined,
/// so that it shows in a profile under its own name.
#[inline(never)]
fn checksum(request: &[u8], rounds: u32) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for round in 0..rounds {
        for &byte in request {
            hash = (hash ^ u64::from(byte ^ round as u8)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Serves one connection: reads requests, answers each with its checksum.
async fn serve_connection(mut stream: TcpStream, work: u32) -> io::Result<()> {
    let mut request = [0u8; REQUEST];
    loop {
        match stream.read_exact(&mut request).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let answer = checksum(&request, work);
        stream.write_all(&answer.to_le_bytes()).await?;
    }
}

/// One client: sends requests until `stop`, checks every answer, counts them.
async fn client(
    mut stream: TcpStream,
    id: u8,
    work: u32,
    stop: Arc<AtomicBool>,
) -> io::Result<u64> {
    let request = [id; REQUEST];
    let expected = checksum(&request, work).to_le_bytes();
    let mut answer = [0u8; 8];
    let mut served = 0;
    while !stop.load(Ordering::Relaxed) {
        stream.write_all(&request).await?;
        stream.read_exact(&mut answer).await?;
        if answer != expected {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "wrong checksum"));
        }
        served += 1;
    }
    Ok(served)
}

/// What the workers did between two metric snapshots, over `wall` of time.
fn print_time_split(before: &RuntimeMetrics, after: &RuntimeMetrics, wall: Duration) {
    println!("worker  busy   polls      steals  parks");
    for (i, (b, a)) in before.workers.iter().zip(&after.workers).enumerate() {
        let busy = a.busy_time.saturating_sub(b.busy_time);
        println!(
            "{i:>6}  {:>4.0}%  {:>9}  {:>6}  {:>5}",
            100.0 * busy.as_secs_f64() / wall.as_secs_f64(),
            a.polls - b.polls,
            a.steal_operations - b.steal_operations,
            a.parks - b.parks,
        );
    }
}

fn main() -> io::Result<()> {
    let o = parse_args().unwrap_or_else(|msg| {
        eprintln!("{msg}");
        std::process::exit(2)
    });
    let mut builder = Builder::new();
    if let Some(workers) = o.workers {
        builder = builder.worker_threads(workers);
    }
    let rt = builder.build()?;
    let handle = rt.handle();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let work = o.work;
        drop(magpie::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(magpie::spawn(serve_connection(stream, work)));
            }
        }));

        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for id in 0..o.connections {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let stop = stop.clone();
            clients.push(magpie::spawn(client(stream, id as u8, work, stop)));
        }
        let (start, before) = (Instant::now(), handle.metrics());
        magpie::time::sleep(Duration::from_secs(o.seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut served = 0;
        for result in magpie::join_all(clients).await {
            served += result.map_err(io::Error::other)??;
        }
        let (wall, after) = (start.elapsed(), handle.metrics());
        println!(
            "{} connections, {served} requests in {:.2} s: {:.0} requests/s",
            o.connections,
            wall.as_secs_f64(),
            served as f64 / wall.as_secs_f64()
        );
        print_time_split(&before, &after, wall);
        io::Result::Ok(())
    })
}
