//! I/O workloads: TCP echo on loopback, with and without a server read timeout. magpie uses
//! magpie-reactor's `net`, tokio `tokio::net`, async-executor async-net (async-io).

use std::io;
use std::net::SocketAddr;

use crate::{AsyncExecutorPool, Family, Size, Workload};

/// The I/O workloads (`http_hello` is in [`crate::http`]).
pub fn workloads() -> Vec<Workload> {
    vec![
        tcp_echo_workload::<false>("tcp_echo"),
        tcp_echo_workload::<true>("tcp_echo_timeouts"),
    ]
}

/// `tcp_echo` (`READ_TIMEOUT` false) or `tcp_echo_timeouts` (true), named `name`.
fn tcp_echo_workload<const READ_TIMEOUT: bool>(name: &'static str) -> Workload {
    Workload {
        name,
        family: Family::Io,
        magpie: tcp_echo::magpie::<READ_TIMEOUT>,
        tokio: tcp_echo::tokio::<READ_TIMEOUT>,
        async_executor: tcp_echo::async_executor::<READ_TIMEOUT>,
    }
}

/// `tcp_echo`: 32 connections, each making 2 000 round trips of 64 bytes through an echo
/// server on loopback; every echo must come back byte for byte.
///
/// `tcp_echo_timeouts` is the same with every server read under a 30 s timeout, as a server's
/// read timeout would be: each function's `READ_TIMEOUT` parameter picks which. A timeout that
/// fires is a failure (a panic): none should within the run.
pub mod tcp_echo {
    use super::*;
    use std::future::Future;
    use std::time::Duration;

    /// The server's read timeout in `tcp_echo_timeouts`.
    const SERVER_READ_TIMEOUT: Duration = Duration::from_secs(30);

    /// How the echo server awaits each read: as is, or under [`SERVER_READ_TIMEOUT`] on the
    /// runtime's own timer.
    #[derive(Clone, Copy)]
    enum ServerReads {
        /// No timeout (`tcp_echo`).
        Plain,
        /// `magpie::time::timeout`.
        Magpie,
        /// `tokio::time::timeout`.
        Tokio,
        /// The read raced against an `async_io::Timer`.
        AsyncIo,
    }

    impl ServerReads {
        /// `timer` when `read_timeout`, else [`ServerReads::Plain`].
        fn pick(read_timeout: bool, timer: ServerReads) -> ServerReads {
            if read_timeout {
                timer
            } else {
                ServerReads::Plain
            }
        }

        /// Awaits `read`, under the timeout if there is one.
        ///
        /// # Panics
        ///
        /// When the timeout fires.
        async fn read<F: Future<Output = io::Result<usize>>>(self, read: F) -> io::Result<usize> {
            const TIMED_OUT: &str = "tcp_echo_timeouts: a server read timed out";
            match self {
                ServerReads::Plain => read.await,
                ServerReads::Magpie => magpie::time::timeout(SERVER_READ_TIMEOUT, read)
                    .await
                    .expect(TIMED_OUT),
                ServerReads::Tokio => tokio::time::timeout(SERVER_READ_TIMEOUT, read)
                    .await
                    .expect(TIMED_OUT),
                ServerReads::AsyncIo => {
                    let timer = async {
                        async_io::Timer::after(SERVER_READ_TIMEOUT).await;
                        panic!("{TIMED_OUT}")
                    };
                    futures_lite::future::or(read, timer).await
                }
            }
        }
    }

    const CONNECTIONS: usize = 32;
    const MESSAGE: usize = 64;

    fn round_trips(size: Size) -> usize {
        size.pick(2_000, 200)
    }

    /// The message connection `conn` sends on round `round`: distinct per round and connection.
    fn message(conn: usize, round: usize) -> [u8; MESSAGE] {
        let mut msg = [0u8; MESSAGE];
        for (i, byte) in msg.iter_mut().enumerate() {
            *byte = (conn * 31 + round * 7 + i) as u8;
        }
        msg
    }

    const LOOPBACK: &str = "127.0.0.1:0";

    /// The client side, on futures-io streams (magpie, async-net).
    async fn futures_client<S>(mut stream: S, conn: usize, rounds: usize) -> io::Result<()>
    where
        S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
    {
        use futures_lite::{AsyncReadExt, AsyncWriteExt};
        let mut echo = [0u8; MESSAGE];
        for round in 0..rounds {
            let msg = message(conn, round);
            stream.write_all(&msg).await?;
            stream.read_exact(&mut echo).await?;
            assert_eq!(echo, msg, "tcp_echo: corrupted echo");
        }
        Ok(())
    }

    /// The echo server side of one connection, on futures-io streams: echoes until EOF and
    /// returns the bytes echoed.
    async fn futures_echo<S>(mut stream: S, reads: ServerReads) -> io::Result<usize>
    where
        S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
    {
        use futures_lite::{AsyncReadExt, AsyncWriteExt};
        let mut buf = [0u8; 4 * MESSAGE];
        let mut echoed = 0;
        loop {
            let n = reads.read(stream.read(&mut buf)).await?;
            if n == 0 {
                return Ok(echoed);
            }
            stream.write_all(&buf[..n]).await?;
            echoed += n;
        }
    }

    fn check_echoed(echoed: usize, size: Size) {
        assert_eq!(
            echoed,
            CONNECTIONS * round_trips(size) * MESSAGE,
            "tcp_echo: server echoed the wrong number of bytes"
        );
    }

    /// On magpie, with `magpie::net`; server reads under `magpie::time::timeout`
    /// when `READ_TIMEOUT`.
    pub fn magpie<const READ_TIMEOUT: bool>(rt: &magpie::Runtime, size: Size) {
        use magpie::net::{TcpListener, TcpStream};
        let rounds = round_trips(size);
        let reads = ServerReads::pick(READ_TIMEOUT, ServerReads::Magpie);
        let echoed = rt.block_on(async {
            let listener = TcpListener::bind(LOOPBACK).await.expect("bind");
            let addr: SocketAddr = listener.local_addr().expect("local_addr");
            let server = magpie::spawn(async move {
                let mut echoes = Vec::with_capacity(CONNECTIONS);
                for _ in 0..CONNECTIONS {
                    let (stream, _) = listener.accept().await.expect("accept");
                    stream.set_nodelay(true).expect("nodelay");
                    echoes.push(magpie::spawn(futures_echo(stream, reads)));
                }
                let mut echoed = 0;
                for echo in echoes {
                    echoed += echo.await.expect("echo task failed").expect("echo");
                }
                echoed
            });
            let clients: Vec<_> = (0..CONNECTIONS)
                .map(|conn| {
                    magpie::spawn(async move {
                        let stream = TcpStream::connect(addr).await?;
                        stream.set_nodelay(true)?;
                        futures_client(stream, conn, rounds).await
                    })
                })
                .collect();
            for client in clients {
                client.await.expect("client task failed").expect("client");
            }
            server.await.expect("server task failed")
        });
        check_echoed(echoed, size);
    }

    /// On tokio, with `tokio::net`; server reads under `tokio::time::timeout` when
    /// `READ_TIMEOUT`.
    pub fn tokio<const READ_TIMEOUT: bool>(rt: &tokio::runtime::Runtime, size: Size) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::{TcpListener, TcpStream};
        let rounds = round_trips(size);
        let reads = ServerReads::pick(READ_TIMEOUT, ServerReads::Tokio);
        let echoed = rt.block_on(async {
            let listener = TcpListener::bind(LOOPBACK).await.expect("bind");
            let addr: SocketAddr = listener.local_addr().expect("local_addr");
            let server = tokio::spawn(async move {
                let mut echoes = Vec::with_capacity(CONNECTIONS);
                for _ in 0..CONNECTIONS {
                    let (mut stream, _) = listener.accept().await.expect("accept");
                    stream.set_nodelay(true).expect("nodelay");
                    echoes.push(tokio::spawn(async move {
                        let mut buf = [0u8; 4 * MESSAGE];
                        let mut echoed = 0;
                        loop {
                            let n = reads.read(stream.read(&mut buf)).await?;
                            if n == 0 {
                                return io::Result::Ok(echoed);
                            }
                            stream.write_all(&buf[..n]).await?;
                            echoed += n;
                        }
                    }));
                }
                let mut echoed = 0;
                for echo in echoes {
                    echoed += echo.await.expect("echo task failed").expect("echo");
                }
                echoed
            });
            let clients: Vec<_> = (0..CONNECTIONS)
                .map(|conn| {
                    tokio::spawn(async move {
                        let mut stream = TcpStream::connect(addr).await?;
                        stream.set_nodelay(true)?;
                        let mut echo = [0u8; MESSAGE];
                        for round in 0..rounds {
                            let msg = message(conn, round);
                            stream.write_all(&msg).await?;
                            stream.read_exact(&mut echo).await?;
                            assert_eq!(echo, msg, "tcp_echo: corrupted echo");
                        }
                        io::Result::Ok(())
                    })
                })
                .collect();
            for client in clients {
                client.await.expect("client task failed").expect("client");
            }
            server.await.expect("server task failed")
        });
        check_echoed(echoed, size);
    }

    /// On async-executor, with `async_net`; server reads raced against an `async_io::Timer`
    /// when `READ_TIMEOUT`.
    pub fn async_executor<const READ_TIMEOUT: bool>(pool: &AsyncExecutorPool, size: Size) {
        use async_net::{TcpListener, TcpStream};
        let rounds = round_trips(size);
        let reads = ServerReads::pick(READ_TIMEOUT, ServerReads::AsyncIo);
        let ex = pool.executor().clone();
        let echoed = pool.block_on(async {
            let listener = TcpListener::bind(LOOPBACK).await.expect("bind");
            let addr: SocketAddr = listener.local_addr().expect("local_addr");
            let server_ex = ex.clone();
            let server = ex.spawn(async move {
                let mut echoes = Vec::with_capacity(CONNECTIONS);
                for _ in 0..CONNECTIONS {
                    let (stream, _) = listener.accept().await.expect("accept");
                    stream.set_nodelay(true).expect("nodelay");
                    echoes.push(server_ex.spawn(futures_echo(stream, reads)));
                }
                let mut echoed = 0;
                for echo in echoes {
                    echoed += echo.await.expect("echo");
                }
                echoed
            });
            let clients: Vec<_> = (0..CONNECTIONS)
                .map(|conn| {
                    ex.spawn(async move {
                        let stream = TcpStream::connect(addr).await?;
                        stream.set_nodelay(true)?;
                        futures_client(stream, conn, rounds).await
                    })
                })
                .collect();
            for client in clients {
                client.await.expect("client");
            }
            server.await
        });
        check_echoed(echoed, size);
    }
}
