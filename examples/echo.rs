//! A TCP echo server, and a client mode that measures round trips per second.
//!
//! ```text
//! cargo run --release --example echo                 # server on 127.0.0.1:0
//! cargo run --release --example echo -- 127.0.0.1:7000
//! cargo run --release --example echo -- --client 127.0.0.1:7000 -n 50 -d 3
//! cargo run --release --example echo -- --client    # in-process server
//! ```
//!
//! The tasks run on magpie's executor (`magpie::run`); the I/O is magpie's reactor.

use magpie::net::{TcpListener, TcpStream};
use magpie::prelude::{AsyncReadExt, AsyncWriteExt};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes per round trip.
const MESSAGE: usize = 64;

struct Options {
    client: bool,
    addr: Option<String>,
    connections: usize,
    seconds: u64,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        client: false,
        addr: None,
        connections: 50,
        seconds: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--client" => o.client = true,
            "-n" | "--connections" => {
                o.connections = value(&arg)?.parse().map_err(|e| format!("-n: {e}"))?
            }
            "-d" | "--seconds" => {
                o.seconds = value(&arg)?.parse().map_err(|e| format!("-d: {e}"))?
            }
            "-h" | "--help" => {
                return Err(
                    "usage: echo [ADDR] | echo --client [ADDR] [-n CONNECTIONS] [-d SECONDS]"
                        .into(),
                )
            }
            a if !a.starts_with('-') && o.addr.is_none() => o.addr = Some(a.to_owned()),
            a => return Err(format!("unexpected argument {a:?} (try --help)")),
        }
    }
    Ok(o)
}

/// Accepts connections forever, echoing each on its own task.
async fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        // Dropping the handle detaches the task.
        drop(magpie::spawn(async move {
            let (mut reader, mut writer) = (stream.clone(), stream);
            // Ends when the client closes; errors (a reset peer) just end the task.
            let _ = futures_lite::io::copy(&mut reader, &mut writer).await;
        }));
    }
}

/// Runs `connections` clients for `seconds`; returns the completed round trips.
async fn bench(addr: SocketAddr, connections: usize, seconds: u64) -> io::Result<u64> {
    let stop = Arc::new(AtomicBool::new(false));
    let trips = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..connections {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (stop, trips) = (stop.clone(), trips.clone());
        clients.push(magpie::spawn(async move {
            let out = [7u8; MESSAGE];
            let mut back = [0u8; MESSAGE];
            while !stop.load(Ordering::Relaxed) {
                stream.write_all(&out).await?;
                stream.read_exact(&mut back).await?;
                if back != out {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "echo mismatch"));
                }
                trips.fetch_add(1, Ordering::Relaxed);
            }
            io::Result::Ok(())
        }));
    }
    // No timers in this crate: a plain thread flips the stop flag.
    std::thread::spawn({
        let stop = stop.clone();
        move || {
            std::thread::sleep(Duration::from_secs(seconds));
            stop.store(true, Ordering::Relaxed);
        }
    });
    for c in clients {
        c.await.map_err(|e| io::Error::other(e.to_string()))??;
    }
    Ok(trips.load(Ordering::Relaxed))
}

fn main() -> io::Result<()> {
    let options = parse_args().unwrap_or_else(|msg| {
        eprintln!("{msg}");
        std::process::exit(2)
    });
    magpie::run(async move {
        if options.client {
            let addr = match &options.addr {
                Some(a) => a
                    .parse()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
                None => {
                    let listener = TcpListener::bind("127.0.0.1:0").await?;
                    let addr = listener.local_addr()?;
                    drop(magpie::spawn(serve(listener)));
                    println!("in-process echo server on {addr}");
                    addr
                }
            };
            let start = Instant::now();
            let trips = bench(addr, options.connections, options.seconds).await?;
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{} connections, {trips} round trips of {MESSAGE} bytes in {secs:.2} s: {:.0} round trips/s",
                options.connections,
                trips as f64 / secs
            );
            Ok(())
        } else {
            let listener =
                TcpListener::bind(options.addr.as_deref().unwrap_or("127.0.0.1:0")).await?;
            println!("echo server listening on {}", listener.local_addr()?);
            serve(listener).await
        }
    })
}
