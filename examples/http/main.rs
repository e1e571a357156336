//! A hyper HTTP/1.1 server on magpie that shuts down gracefully on Ctrl-C or SIGTERM.
//!
//! ```sh
//! cargo run --release --example http --features hyper            # listens on 127.0.0.1:3000
//! cargo run --release --example http --features hyper -- 0.0.0.0:8080
//! curl http://127.0.0.1:3000/            # Hello, World!
//! curl -d 'some body' http://127.0.0.1:3000/echo
//! curl 'http://127.0.0.1:3000/slow?ms=5000' & kill -TERM <pid>   # the request still finishes
//! ```
//!
//! On the signal it stops accepting, lets in-flight requests finish for up to 10 s, cuts what
//! is left, and prints what it did.

mod server;

use futures_lite::future;
use magpie::signal;

#[magpie::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let listener = magpie::net::TcpListener::bind(addr.as_str()).await?;
    println!("http: listening on http://{}", listener.local_addr()?);
    // Ctrl-C everywhere; SIGTERM too where there are Unix signals.
    #[cfg(unix)]
    let mut terminate = signal::signal(signal::SignalKind::terminate())?;
    let shutdown = async move {
        future::or(
            async {
                let _ = signal::ctrl_c().await;
            },
            async {
                #[cfg(unix)]
                futures_lite::StreamExt::next(&mut terminate).await;
                #[cfg(not(unix))]
                future::pending::<()>().await;
            },
        )
        .await;
        println!("http: shutting down");
    };
    let summary = server::serve(listener, shutdown, server::Config::default()).await?;
    println!(
        "http: served {} connections; {} open at shutdown, {} cut after the grace period",
        summary.accepted, summary.open_at_shutdown, summary.cut
    );
    Ok(())
}
