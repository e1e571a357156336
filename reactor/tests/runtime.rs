//! The reactor under magpie's own executor: inside `run` (a multi-threaded runtime) and under
//! plain `block_on` with no runtime at all.

use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use magpie_reactor::net::{TcpListener, TcpStream, UdpSocket};
use std::io;

#[test]
fn echo_200_clients_200_round_trips_under_magpie_run() {
    const CLIENTS: usize = 200;
    const ROUNDS: usize = 200;
    const MSG: usize = 32;
    let verified = magpie_executor::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = magpie_executor::spawn(async move {
            for _ in 0..CLIENTS {
                let (stream, _) = listener.accept().await.unwrap();
                // Detached: each connection's echo task ends when its client closes.
                drop(magpie_executor::spawn(async move {
                    let (mut r, mut w) = (stream.clone(), stream);
                    futures_lite::io::copy(&mut r, &mut w).await.unwrap();
                }));
            }
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                magpie_executor::spawn(async move {
                    let mut s = TcpStream::connect(addr).await.unwrap();
                    let mut verified = 0;
                    for r in 0..ROUNDS {
                        // Distinct bytes per client and round, so a crossed stream is caught.
                        let out: Vec<u8> = (0..MSG).map(|i| (c * 7 + r * 13 + i) as u8).collect();
                        s.write_all(&out).await.unwrap();
                        let mut back = [0u8; MSG];
                        s.read_exact(&mut back).await.unwrap();
                        assert_eq!(&back[..], &out[..]);
                        verified += MSG;
                    }
                    s.close().await.unwrap();
                    verified
                })
            })
            .collect();
        let mut verified = 0;
        for c in clients {
            verified += c.await.unwrap();
        }
        server.await.unwrap();
        verified
    });
    assert_eq!(verified, CLIENTS * ROUNDS * MSG);
}

#[test]
fn tcp_and_udp_under_magpie_block_on_without_runtime() {
    magpie_executor::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let (client, accepted) = future::zip(
            TcpStream::connect(listener.local_addr()?),
            listener.accept(),
        )
        .await;
        let (mut client, (mut server, _)) = (client?, accepted?);
        client.write_all(b"no runtime").await?;
        client.close().await?;
        let mut got = Vec::new();
        server.read_to_end(&mut got).await?;
        assert_eq!(got, b"no runtime");

        let a = UdpSocket::bind("127.0.0.1:0").await?;
        let b = UdpSocket::bind("127.0.0.1:0").await?;
        a.send_to(b"dgram", b.local_addr()?).await?;
        let mut buf = [0; 8];
        let (n, from) = b.recv_from(&mut buf).await?;
        assert_eq!((&buf[..n], from), (&b"dgram"[..], a.local_addr()?));
        io::Result::Ok(())
    })
    .unwrap();
}
