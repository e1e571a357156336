//! The driving turn, through the facade: idle workers wait in the shared reactor's poller and
//! run what its events wake, busy workers collect I/O between tasks, and the `magpie-reactor`
//! thread takes over a turn left vacant (every worker stuck), so I/O and timers are always
//! delivered, and shutdown and spawns reach a worker that waits in the poller.
//!
//! The reactor is process-wide, so the tests of this binary run one at a time (`serial`): a
//! worker of another test's runtime must not drive it and hide the path under test. Every
//! wait is bounded (`within`), so a lost wakeup fails with a message instead of hanging.

mod support;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use magpie::net::{TcpListener, TcpStream};
use magpie::prelude::*;
use magpie::time::{sleep, timeout};
use magpie::Runtime;
use support::{serial, spin_for, wait_until_a_worker_drives, within, Rng};

/// Far beyond anything a healthy run needs, on a loaded 2-core machine too.
const LONG: Duration = Duration::from_secs(10);

fn runtime(workers: usize, name: &str) -> Runtime {
    Runtime::builder()
        .worker_threads(workers)
        .thread_name(name)
        .build()
        .expect("build the runtime")
}

/// Waits (at most `LONG`) until `count` reaches `n`.
fn wait_for_count(count: &AtomicUsize, n: usize, what: &str) {
    let deadline = Instant::now() + LONG;
    while count.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "{what} within {LONG:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A connected pair: a plain std socket (the peer) and a magpie stream registered with the
/// reactor (which this starts).
fn socket_pair() -> (std::net::TcpStream, TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    let (ours, _) = listener.accept().expect("accept");
    (
        peer,
        TcpStream::from_std(ours).expect("register with the reactor"),
    )
}

// ---------------------------------------------------------------------------------------------
// 1. Stress: sockets, timers and CPU bursts together, workers coming and going from the poller.
// ---------------------------------------------------------------------------------------------

const CONNECTIONS: usize = 64;
const ROUNDS: usize = 40;
const SLEEPERS: u64 = 8;
const BURSTERS: u64 = 2;

/// Echoes until the peer closes; every read under a (long) timeout. Returns the bytes echoed.
async fn echo(stream: TcpStream) -> usize {
    let mut buf = vec![0u8; 4096];
    let mut total = 0;
    loop {
        let n = timeout(LONG, (&stream).read(&mut buf))
            .await
            .expect("an echo read timed out: its readiness was never delivered")
            .expect("echo read");
        if n == 0 {
            return total;
        }
        timeout(LONG, (&stream).write_all(&buf[..n]))
            .await
            .expect("an echo write timed out")
            .expect("echo write");
        total += n;
    }
}

/// Sends `ROUNDS` messages of random sizes, checks each echo byte for byte, pausing now and
/// then so that the workers go idle and re-enter the poller. Returns the bytes sent.
async fn client(addr: std::net::SocketAddr, id: usize) -> usize {
    let stream = timeout(LONG, TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect");
    stream.set_nodelay(true).unwrap();
    let mut rng = Rng::new(1000 + id as u64);
    let mut sent = 0;
    for round in 0..ROUNDS {
        let len = rng.range(1, 16 * 1024) as usize;
        let message: Vec<u8> = (0..len)
            .map(|i| (i.wrapping_mul(31) ^ id.wrapping_mul(7) ^ round) as u8)
            .collect();
        timeout(LONG, (&stream).write_all(&message))
            .await
            .expect("a client write timed out")
            .expect("client write");
        let mut echoed = vec![0u8; len];
        timeout(LONG, (&stream).read_exact(&mut echoed))
            .await
            .unwrap_or_else(|_| {
                panic!("connection {id}, round {round}: the echo's read timed out (lost wakeup)")
            })
            .expect("client read");
        if let Some(at) = (0..len).find(|&i| echoed[i] != message[i]) {
            panic!("connection {id}, round {round}: echo differs at byte {at} of {len}");
        }
        sent += len;
        if rng.next() % 4 == 0 {
            sleep(Duration::from_micros(rng.range(0, 2000))).await;
        }
    }
    sent
}

/// Sleeps random short durations until told to stop; checks none ends early. Returns how many.
async fn sleeper(stop: Arc<AtomicBool>, seed: u64) -> usize {
    let mut rng = Rng::new(seed);
    let mut done = 0;
    while !stop.load(Ordering::Relaxed) {
        let asked = Duration::from_micros(rng.range(0, 3000));
        let start = Instant::now();
        sleep(asked).await;
        let slept = start.elapsed();
        assert!(
            slept >= asked,
            "sleep({asked:?}) completed after {slept:?}: earlier than asked"
        );
        done += 1;
    }
    done
}

/// Holds its worker in 1–2 ms polls that never yield, between short sleeps: workers leave
/// the poller, and while both burst at once the reactor thread must take the turn over.
async fn burster(stop: Arc<AtomicBool>, seed: u64) -> usize {
    let mut rng = Rng::new(seed);
    let mut bursts = 0;
    while !stop.load(Ordering::Relaxed) {
        spin_for(Duration::from_micros(rng.range(1000, 2000)));
        bursts += 1;
        sleep(Duration::from_micros(rng.range(0, 3000))).await;
    }
    bursts
}

#[test]
fn sixty_four_echo_connections_with_timers_and_cpu_bursts_echo_every_byte_and_no_sleep_ends_early()
{
    let _serial = serial();
    let rt = runtime(2, "drv-stress");
    within(Duration::from_secs(120), "the stress run", move || {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let server = magpie::spawn(async move {
                let mut echoes = Vec::new();
                for _ in 0..CONNECTIONS {
                    let (stream, _) = timeout(LONG, listener.accept())
                        .await
                        .expect("accept timed out")
                        .expect("accept");
                    echoes.push(magpie::spawn(echo(stream)));
                }
                let mut echoed = 0;
                for e in echoes {
                    echoed += e.await.expect("an echo task failed");
                }
                echoed
            });
            let sleepers: Vec<_> = (0..SLEEPERS)
                .map(|i| magpie::spawn(sleeper(stop.clone(), 10 + i)))
                .collect();
            let bursters: Vec<_> = (0..BURSTERS)
                .map(|i| magpie::spawn(burster(stop.clone(), 20 + i)))
                .collect();
            let clients: Vec<_> = (0..CONNECTIONS)
                .map(|id| magpie::spawn(client(addr, id)))
                .collect();
            let mut sent = 0;
            for c in clients {
                sent += c.await.expect("a client task failed");
            }
            let echoed = server.await.expect("the server task failed");
            assert_eq!(echoed, sent, "the server echoed a different byte count");
            stop.store(true, Ordering::Relaxed);
            for (i, s) in sleepers.into_iter().enumerate() {
                let done = s.await.expect("a sleeper task failed");
                assert!(done > 0, "sleeper {i} never completed a sleep");
            }
            for (i, b) in bursters.into_iter().enumerate() {
                let bursts = b.await.expect("a burster task failed");
                assert!(bursts > 0, "burster {i} never ran");
            }
        });
        let report = rt.shutdown_timeout(LONG);
        assert_eq!(report.workers_left_running, 0, "shutdown: {report}");
    });
}

// ---------------------------------------------------------------------------------------------
// 2. Shutdown while a worker waits in the poller.
// ---------------------------------------------------------------------------------------------

/// Runs a short sleep in a task, so that a worker parks again after the reactor has started:
/// a worker parks in the poller only if the reactor exists when it parks (one that went idle
/// before stays on its condvar, and the reactor thread drives, until it next has work).
fn settle_after_reactor_start(rt: &Runtime) {
    rt.block_on(async {
        magpie::spawn(sleep(Duration::from_millis(1)))
            .await
            .expect("the settling task");
    });
}

/// A runtime whose reactor is started (a listener, kept, and one short sleep) and whose
/// workers have gone idle, one of them into the poller.
fn idle_driving_runtime(workers: usize, name: &str) -> (Runtime, TcpListener) {
    let rt = runtime(workers, name);
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    settle_after_reactor_start(&rt);
    std::thread::sleep(Duration::from_millis(50));
    wait_until_a_worker_drives(name, LONG);
    (rt, listener)
}

#[test]
fn dropping_a_runtime_whose_worker_waits_in_the_poller_returns() {
    let _serial = serial();
    for i in 0..8 {
        within(LONG, &format!("drop #{i} of an idle runtime"), move || {
            let (rt, listener) = idle_driving_runtime(2, "drv-drop");
            drop(rt);
            drop(listener);
        });
    }
}

#[test]
fn shutdown_timeout_from_another_thread_stops_every_worker_while_one_waits_in_the_poller() {
    let _serial = serial();
    for i in 0..8 {
        let (tx, rx) = mpsc::channel();
        within(LONG, &format!("idle runtime #{i}"), move || {
            tx.send(idle_driving_runtime(2, "drv-shut")).unwrap();
        });
        let (rt, listener) = rx.recv().unwrap();
        let report = within(LONG, &format!("shutdown_timeout #{i}"), move || {
            rt.shutdown_timeout(Duration::from_secs(5))
        });
        assert_eq!(
            report.workers_left_running, 0,
            "shutdown #{i} did not stop a worker that waited in the poller: {report}"
        );
        drop(listener);
    }
}

#[test]
fn a_task_blocked_on_a_socket_read_is_cancelled_at_shutdown() {
    let _serial = serial();
    for i in 0..5 {
        let (tx, rx) = mpsc::channel();
        within(
            LONG,
            &format!("runtime #{i} with a blocked reader"),
            move || {
                let rt = runtime(2, "drv-cancel");
                // The peer stays open and never writes: the read is never ready.
                let (peer, stream) = socket_pair();
                let polled = Arc::new(AtomicUsize::new(0));
                let reader = {
                    let polled = polled.clone();
                    rt.spawn(async move {
                        polled.fetch_add(1, Ordering::SeqCst);
                        let mut buf = [0u8; 16];
                        (&stream).read(&mut buf).await
                    })
                };
                wait_for_count(&polled, 1, "the reader task ran");
                std::thread::sleep(Duration::from_millis(50));
                wait_until_a_worker_drives("drv-cancel", LONG);
                tx.send((rt, peer, reader)).unwrap();
            },
        );
        let (rt, peer, reader) = rx.recv().unwrap();
        let report = within(LONG, &format!("shutdown #{i}"), move || {
            rt.shutdown_timeout(Duration::from_secs(5))
        });
        assert_eq!(report.workers_left_running, 0, "shutdown #{i}: {report}");
        assert!(report.cancelled >= 1, "shutdown #{i}: {report}");
        let joined = within(LONG, "awaiting the reader's JoinHandle", move || {
            magpie::block_on(reader)
        });
        match joined {
            Err(e) => assert!(e.is_cancelled(), "#{i}: the reader failed otherwise: {e}"),
            Ok(r) => panic!("#{i}: a read on a silent open socket completed: {r:?}"),
        }
        drop(peer);
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Every worker stuck in a long poll: the reactor thread takes the turn over.
// ---------------------------------------------------------------------------------------------

/// Sets its flag when dropped: stuck tasks come free however the test ends.
struct ReleaseOnDrop(Arc<AtomicBool>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn io_and_timers_are_delivered_while_every_worker_is_stuck_in_a_long_poll() {
    let _serial = serial();
    let rt = runtime(2, "drv-stuck");
    within(
        Duration::from_secs(20),
        "the stuck-workers run",
        move || {
            // The std peer writes; ours is registered with the reactor (starting it).
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let ours = magpie::Async::new(listener.accept().unwrap().0).expect("register");
            settle_after_reactor_start(&rt);
            std::thread::sleep(Duration::from_millis(50));
            wait_until_a_worker_drives("drv-stuck", LONG);

            // Stick both workers: each runs a task that blocks its thread until released (after
            // the checks below), or for `LONG` at most.
            let started = Arc::new(AtomicUsize::new(0));
            let finished = Arc::new(AtomicUsize::new(0));
            let release = Arc::new(AtomicBool::new(false));
            let _release = ReleaseOnDrop(release.clone());
            let stuck: Vec<_> = (0..2)
                .map(|_| {
                    let (started, finished) = (started.clone(), finished.clone());
                    let release = release.clone();
                    rt.spawn(async move {
                        started.fetch_add(1, Ordering::SeqCst);
                        let start = Instant::now();
                        while !release.load(Ordering::SeqCst) && start.elapsed() < LONG {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        finished.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            wait_for_count(&started, 2, "both workers took a stuck task");

            // (b) A timer, polled on a plain thread.
            let timer = {
                let finished = finished.clone();
                std::thread::spawn(move || {
                    let asked = Duration::from_millis(50);
                    let start = Instant::now();
                    futures_lite::future::block_on(sleep(asked));
                    (asked, start.elapsed(), finished.load(Ordering::SeqCst))
                })
            };
            // (a) A read, polled on this plain thread, of what the peer writes a little later.
            let writer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                peer.write_all(b"ping").expect("peer write");
                peer
            });
            let mut buf = [0u8; 4];
            futures_lite::future::block_on((&ours).read_exact(&mut buf)).expect("read");
            let finished_at_read = finished.load(Ordering::SeqCst);
            assert_eq!(&buf, b"ping");
            assert_eq!(
                finished_at_read, 0,
                "the read completed only after a stuck worker came free: the reactor thread did \
             not deliver the readiness while every worker was stuck"
            );
            let (asked, slept, finished_at_timer) = timer.join().expect("the timer thread");
            assert!(slept >= asked, "sleep({asked:?}) ended after {slept:?}");
            assert_eq!(
                finished_at_timer, 0,
                "sleep({asked:?}) ended after {slept:?}, only after a stuck worker came free: the \
             reactor thread did not fire it while every worker was stuck"
            );
            let _peer = writer.join().expect("the writer thread");
            release.store(true, Ordering::SeqCst);
            for s in stuck {
                magpie::block_on(s).expect("a stuck task failed");
            }
            assert_eq!(finished.load(Ordering::SeqCst), 2);
            drop(rt);
        },
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Tasks woken by I/O run on a worker; a spawn reaches a worker that waits in the poller.
// ---------------------------------------------------------------------------------------------

/// Twenty times: a task awaits a read, the runtime goes idle (a worker in the poller), the
/// peer writes; the task gets the data, on one of the runtime's workers.
fn socket_reads_wake_tasks_on_a_worker(workers: usize, name: &'static str) {
    let _serial = serial();
    let rt = runtime(workers, name);
    within(
        Duration::from_secs(30),
        "the socket-wake rounds",
        move || {
            let (mut peer, stream) = socket_pair();
            let stream = Arc::new(stream);
            for round in 0..20u8 {
                let message = [round; 8];
                let reader = {
                    let stream = stream.clone();
                    rt.spawn(async move {
                        let mut buf = [0u8; 8];
                        (&*stream).read_exact(&mut buf).await.expect("read");
                        let thread = std::thread::current().name().map(str::to_owned);
                        (buf, thread)
                    })
                };
                // Idle with the reader pending: a worker sits in the poller.
                wait_until_a_worker_drives(name, LONG);
                peer.write_all(&message).expect("peer write");
                let (got, thread) = within(LONG, &format!("round {round}'s reader"), move || {
                    magpie::block_on(reader)
                })
                .expect("the reader task failed");
                assert_eq!(got, message, "round {round}");
                let thread = thread.unwrap_or_default();
                assert!(
                    thread.starts_with(&format!("{name}-")),
                    "round {round}: the woken task ran on {thread:?}, not on a worker"
                );
            }
            drop(rt);
        },
    );
}

#[test]
fn a_task_awaiting_a_socket_read_is_woken_and_runs_with_one_worker() {
    socket_reads_wake_tasks_on_a_worker(1, "drv-wake1");
}

#[test]
fn a_task_awaiting_a_socket_read_is_woken_and_runs_with_two_workers() {
    socket_reads_wake_tasks_on_a_worker(2, "drv-wake2");
}

#[test]
fn a_task_spawned_from_a_plain_thread_runs_while_the_only_worker_waits_in_the_poller() {
    let _serial = serial();
    within(
        Duration::from_secs(30),
        "the remote-spawn rounds",
        move || {
            let (rt, listener) = idle_driving_runtime(1, "drv-spawn");
            let handle = rt.handle();
            for round in 0..20 {
                // No timer pending: the worker's wait has no timeout, only the spawn can end it.
                wait_until_a_worker_drives("drv-spawn", LONG);
                let (tx, rx) = mpsc::channel();
                let task = async move {
                    let thread = std::thread::current().name().map(str::to_owned);
                    tx.send(thread).expect("the test is waiting");
                };
                // From this plain thread (Runtime::spawn) and from a fresh one (Handle::spawn).
                if round % 2 == 0 {
                    drop(rt.spawn(task));
                } else {
                    let handle = handle.clone();
                    std::thread::spawn(move || drop(handle.spawn(task)))
                        .join()
                        .expect("the spawning thread");
                }
                let thread = rx.recv_timeout(LONG).unwrap_or_else(|_| {
                    panic!(
                        "round {round}: a task spawned while the only worker waited in the poller \
                     did not run within {LONG:?}: the spawn did not interrupt the wait"
                    )
                });
                let thread = thread.unwrap_or_default();
                assert!(
                    thread.starts_with("drv-spawn-"),
                    "round {round}: ran on {thread:?}"
                );
            }
            drop(rt);
            drop(listener);
        },
    );
}

// ---------------------------------------------------------------------------------------------
// 6. What one drive wakes is shared: the driving worker wakes a sleeping one for the batch.
// ---------------------------------------------------------------------------------------------

/// Five times: two tasks wait for the same socket to become readable, the runtime goes idle
/// (one worker in the poller, the other asleep on its condvar: no spin), the peer writes one
/// byte. The one event wakes both tasks on the driving worker, in one round: the first into its
/// LIFO slot, the second into its queue, whose notification the drive defers until the round
/// is over. Each task then holds its worker until the other has started, so they only finish
/// if the sleeping worker was woken for the second — the owed notification was sent. (The
/// monitor would not rescue it: it takes tasks out of LIFO slots only.)
#[test]
fn two_tasks_woken_by_one_event_run_on_both_workers_at_once() {
    let _serial = serial();
    within(Duration::from_secs(90), "the shared-batch rounds", || {
        const NAME: &str = "drv-share";
        let rt = Runtime::builder()
            .worker_threads(2)
            .thread_name(NAME)
            .spin_before_park(Duration::ZERO)
            .build()
            .expect("build the runtime");
        let (mut peer, ours) = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let peer =
                std::net::TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
            (peer, listener.accept().expect("accept").0)
        };
        let source = Arc::new(magpie::Async::new(ours).expect("register with the reactor"));
        settle_after_reactor_start(&rt);
        for round in 0..5u8 {
            let (polled, started) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let tasks: Vec<_> = (0..2)
                .map(|_| {
                    let (source, polled, started) =
                        (source.clone(), polled.clone(), started.clone());
                    rt.spawn(async move {
                        // Counted in the poll that registers the wait below, so once both are
                        // counted and the runtime is idle again, both wait on the socket.
                        polled.fetch_add(1, Ordering::SeqCst);
                        source.readable().await.expect("readable");
                        started.fetch_add(1, Ordering::SeqCst);
                        let deadline = Instant::now() + LONG;
                        while started.load(Ordering::SeqCst) < 2 {
                            if Instant::now() >= deadline {
                                return None;
                            }
                            std::hint::spin_loop();
                        }
                        std::thread::current().name().map(str::to_owned)
                    })
                })
                .collect();
            wait_for_count(&polled, 2, "both tasks polled");
            wait_until_a_worker_drives(NAME, LONG);
            peer.write_all(&[round]).expect("peer write");
            let threads: Vec<String> = tasks
                .into_iter()
                .map(|task| {
                    magpie::block_on(task)
                        .expect("a reader task failed")
                        .unwrap_or_else(|| {
                            panic!(
                                "round {round}: the other task did not start within {LONG:?}: \
                                 the worker that drove did not wake the sleeping one for the \
                                 second task it queued"
                            )
                        })
                })
                .collect();
            assert_ne!(
                threads[0], threads[1],
                "round {round}: both tasks ran on one thread"
            );
            // Consume the byte (a short read clears the readiness the next round waits for).
            let mut buf = [0u8; 16];
            let n = rt
                .block_on(async { (&*source).read(&mut buf).await })
                .expect("read the byte");
            assert_eq!(&buf[..n], &[round]);
        }
        drop(rt);
    });
}

/// A worker busy with long tasks (61 polls of its round interval take longer than the reactor
/// thread's watch interval) asks the reactor thread for the turn once per busy period, not at
/// every round: a request it does not come back for in time pushed the driving reactor thread
/// off the poller for nothing, until the reactor thread took the turn back — I/O and timers a
/// millisecond late every few milliseconds (regression, a review: ~60 hand-overs in 300 ms).
#[test]
fn a_worker_busy_with_long_tasks_leaves_the_reactor_thread_driving() {
    let _serial = serial();
    let rt = runtime(1, "drv-busy");
    // The reactor started (a timer), then every worker busy: the turn goes back to the
    // reactor thread within a couple of watch intervals.
    rt.block_on(sleep(Duration::from_millis(5)));
    let handovers_before = magpie_reactor::stats().turn_handovers;
    let busy = rt.spawn(async {
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(300) {
            spin_for(Duration::from_micros(50));
            magpie::task::yield_now().await;
        }
    });
    within(LONG, "the busy task ends", move || {
        rt.block_on(busy).unwrap()
    });
    let handovers = magpie_reactor::stats().turn_handovers - handovers_before;
    // About 98 rounds of 61 polls in 300 ms: asking at every round hands the turn over at
    // most rounds (~60 in the review's run). Asking once per busy period hands it over once,
    // plus one for each time the reactor thread was kept off its core past a whole round (a
    // loaded machine, or ThreadSanitizer: CI saw 4), when the worker finds the turn vacant,
    // takes it and so may ask again. The bound sits far from both.
    assert!(
        handovers <= 15,
        "{handovers} hand-overs to a worker busy with 50 µs polls for 300 ms"
    );
}
