//! The deterministic runtime (`magpie::sim`): seeded schedules that replay exactly, a virtual
//! clock, deadlocks reported instead of hung, and the failing seed printed with the command
//! that replays it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use magpie::sim::{self, Sim, SimError};
use magpie::sync::{Event, Lock};
use magpie::time::{interval, now, sleep, timeout, MissedTicks};

/// Four tasks that each yield a few times: many possible interleavings.
async fn four_yielding_tasks() {
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            magpie::spawn(async {
                for _ in 0..3 {
                    magpie::task::yield_now().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

fn trace(seed: u64) -> Vec<u64> {
    Sim::new(seed)
        .record_trace()
        .run(four_yielding_tasks())
        .unwrap()
        .trace
}

#[test]
fn the_same_seed_polls_tasks_in_the_same_order_twice() {
    for seed in [0, 1, 42, u64::MAX] {
        let first = trace(seed);
        assert!(first.len() > 16, "every task polled 4 times: {first:?}");
        assert_eq!(first, trace(seed), "seed {seed}");
    }
}

#[test]
fn different_seeds_interleave_differently() {
    let traces: std::collections::HashSet<Vec<u64>> = (0..20).map(trace).collect();
    // 20 seeds over billions of interleavings: all distinct but for a rare collision.
    assert!(traces.len() >= 15, "only {} distinct traces", traces.len());
}

/// The planted bug: the balance is checked, then (after an `.await`) written, without a lock
/// held across both; two withdrawals can both pass the check.
async fn two_unsafe_withdrawals() {
    let balance = Arc::new(Mutex::new(100u64));
    let withdraw = |balance: Arc<Mutex<u64>>| async move {
        let enough = *balance.lock().unwrap() >= 80;
        magpie::task::yield_now().await; // the call to the ledger service
        if enough {
            let mut balance = balance.lock().unwrap();
            *balance = balance.checked_sub(80).expect("overdrawn");
        }
    };
    let a = magpie::spawn(withdraw(balance.clone()));
    let b = magpie::spawn(withdraw(balance.clone()));
    a.await.unwrap();
    b.await.unwrap();
}

/// The fix: the check and the write under one `Lock`, held across the `.await`.
async fn two_locked_withdrawals() {
    let balance = Arc::new(Lock::new(100u64));
    let withdraw = |balance: Arc<Lock<u64>>| async move {
        let mut balance = balance.lock().await;
        if *balance >= 80 {
            magpie::task::yield_now().await;
            *balance = balance.checked_sub(80).expect("overdrawn");
        }
    };
    let a = magpie::spawn(withdraw(balance.clone()));
    let b = magpie::spawn(withdraw(balance.clone()));
    a.await.unwrap();
    b.await.unwrap();
    assert_eq!(*balance.lock().await, 20);
}

/// Does `seed` overdraw the unsafe version?
fn overdraws(seed: u64) -> bool {
    std::panic::catch_unwind(|| sim::run(seed, two_unsafe_withdrawals())).is_err()
}

#[test]
fn a_check_then_act_race_is_found_within_1000_seeds_and_its_seed_replays_it() {
    let found = (0..1000).find(|&seed| overdraws(seed));
    let seed = found.expect("no seed in 0..1000 interleaves the two withdrawals");
    for _ in 0..3 {
        assert!(overdraws(seed), "seed {seed} did not replay the race");
    }
    // And not every seed does: the schedule really depends on it.
    assert!((0..1000).any(|seed| !overdraws(seed)));
}

#[test]
fn the_fixed_version_passes_every_seed() {
    sim::check(0..1000, |_| two_locked_withdrawals());
}

/// The child half of the replay test below: fails on the seeds that overdraw. Outside that
/// test (no `MAGPIE_SIM_CHILD`) it checks the fixed version instead, so it never fails there.
#[test]
fn replay_child() {
    if std::env::var_os("MAGPIE_SIM_CHILD").is_some() {
        sim::check(0..1000, |_| two_unsafe_withdrawals());
    } else {
        sim::check(0..10, |_| two_locked_withdrawals());
    }
}

#[test]
fn check_prints_the_failing_seed_and_magpie_seed_replays_only_that_one() {
    let bad = (0..1000).find(|&seed| overdraws(seed)).unwrap();
    let good = (0..1000).find(|&seed| !overdraws(seed)).unwrap();
    let child = |seed: Option<u64>| {
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command
            .args(["replay_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("MAGPIE_SIM_CHILD", "1")
            .env_remove("MAGPIE_SEED");
        if let Some(seed) = seed {
            command.env("MAGPIE_SEED", seed.to_string());
        }
        let out = command.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // Over the seeds, the first failing one is named with the command that replays it.
    let (passed, stderr) = child(None);
    assert!(!passed, "the unsafe version failed no seed: {stderr}");
    let expected = format!(
        "seed {bad} failed; replay it with: MAGPIE_SEED={bad} cargo test replay_child -- --exact"
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(
        stderr.contains("overdrawn"),
        "the body's own message: {stderr}"
    );

    // That command fails the same way; a seed that does not overdraw passes alone.
    let (passed, stderr) = child(Some(bad));
    assert!(!passed && stderr.contains(&expected), "{stderr}");
    let (passed, stderr) = child(Some(good));
    assert!(passed, "seed {good} alone: {stderr}");
}

#[test]
fn an_hour_long_sleep_takes_no_wall_time() {
    let wall = Instant::now();
    let slept = sim::run(1, async {
        let start = now();
        sleep(Duration::from_secs(3600)).await;
        now() - start
    });
    assert_eq!(slept, Duration::from_secs(3600));
    // Far below the hour, far above any stall of a loaded machine.
    assert!(
        wall.elapsed() < Duration::from_secs(60),
        "{:?}",
        wall.elapsed()
    );
}

#[test]
fn timeouts_fire_in_deadline_order_at_their_exact_virtual_instants() {
    sim::check(0..50, |_| async {
        let start = now();
        let fired = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = [20u64, 10]
            .into_iter()
            .map(|ms| {
                let fired = fired.clone();
                magpie::spawn(async move {
                    let never = std::future::pending::<()>();
                    let result = timeout(Duration::from_millis(ms), never).await;
                    assert!(result.is_err());
                    fired.lock().unwrap().push((ms, now() - start));
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            *fired.lock().unwrap(),
            [
                (10, Duration::from_millis(10)),
                (20, Duration::from_millis(20))
            ]
        );
    });
}

/// The instants (from the start) at which five ticks of a 10 ms interval are returned, and the
/// instants they were scheduled for, when the task sleeps 35 ms after the second tick.
async fn late_interval(policy: MissedTicks) -> Vec<(u64, u64)> {
    let start = now();
    let ms = |t: Instant| (t - start).as_millis() as u64;
    let mut every = interval(Duration::from_millis(10));
    every.set_missed_ticks(policy);
    let mut ticks = Vec::new();
    for i in 0..5 {
        let scheduled = every.tick().await;
        ticks.push((ms(now()), ms(scheduled)));
        if i == 1 {
            sleep(Duration::from_millis(35)).await;
        }
    }
    ticks
}

#[test]
fn an_interval_keeps_its_missed_tick_policy_on_the_virtual_clock() {
    // (returned at, scheduled for), in ms from the start.
    let burst = sim::run(2, late_interval(MissedTicks::Burst));
    assert_eq!(burst, [(0, 0), (10, 10), (45, 20), (45, 30), (45, 40)]);
    let delay = sim::run(2, late_interval(MissedTicks::Delay));
    assert_eq!(delay, [(0, 0), (10, 10), (45, 20), (55, 55), (65, 65)]);
    let skip = sim::run(2, late_interval(MissedTicks::Skip));
    assert_eq!(skip, [(0, 0), (10, 10), (45, 20), (50, 50), (60, 60)]);
}

#[test]
fn two_tasks_waiting_on_each_other_are_reported_as_a_deadlock() {
    let outcome = Sim::new(5).run(async {
        let (a_ready, b_ready) = (Arc::new(Event::new()), Arc::new(Event::new()));
        let a = magpie::task::Builder::new()
            .name("a")
            .spawn({
                let (a_ready, b_ready) = (a_ready.clone(), b_ready.clone());
                async move {
                    b_ready.wait().await; // waits for b, which waits for a
                    a_ready.set();
                }
            })
            .unwrap();
        let b = magpie::task::Builder::new()
            .name("b")
            .spawn(async move {
                a_ready.wait().await;
                b_ready.set();
            })
            .unwrap();
        a.await.unwrap();
        b.await.unwrap();
    });
    let Err(SimError::Deadlock(deadlock)) = outcome else {
        panic!("expected a deadlock, got {outcome:?}");
    };
    assert_eq!(deadlock.seed, 5);
    assert_eq!(deadlock.at, Duration::ZERO);
    let mut names: Vec<_> = deadlock
        .waiting
        .tasks
        .iter()
        .map(|t| (t.name.clone().unwrap(), t.location.file().to_owned()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("a".to_owned(), file!().to_owned()),
            ("b".to_owned(), file!().to_owned())
        ]
    );
    let message = SimError::Deadlock(deadlock).to_string();
    assert!(message.contains("deadlock (seed 5)"), "{message}");
}

#[test]
fn a_deadlock_after_timers_is_reported_at_its_virtual_time() {
    let outcome = Sim::new(0).run(async {
        sleep(Duration::from_secs(5)).await;
        std::future::pending::<()>().await;
    });
    match outcome {
        Err(SimError::Deadlock(deadlock)) => assert_eq!(deadlock.at, Duration::from_secs(5)),
        other => panic!("expected a deadlock, got {other:?}"),
    }
}

#[test]
fn tasks_that_wake_each_other_forever_stop_at_the_poll_limit() {
    let outcome = Sim::new(0).max_polls(1_000).run(async {
        loop {
            magpie::task::yield_now().await;
        }
    });
    assert!(
        matches!(
            outcome,
            Err(SimError::PollLimit {
                seed: 0,
                polls: 1_000
            })
        ),
        "{outcome:?}"
    );
}

#[test]
fn real_sockets_are_refused_with_an_error_that_says_why() {
    let err = sim::run(0, async {
        magpie::net::TcpListener::bind("127.0.0.1:0").await
    })
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    assert!(err.to_string().contains("magpie::sim::duplex"), "{err}");
    // Outside the simulation the same thread may use sockets again.
    let listener = magpie::block_on(magpie::net::TcpListener::bind("127.0.0.1:0"));
    assert!(listener.is_ok());
}

#[test]
fn real_connects_and_name_lookups_are_refused_before_they_reach_the_os() {
    // A real listener outside the simulation: no connection may reach it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let by_address = sim::run(
        0,
        async move { magpie::net::TcpStream::connect(addr).await },
    )
    .unwrap_err();
    assert_eq!(by_address.kind(), std::io::ErrorKind::Unsupported);
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "the refused connect reached the real listener"
    );
    // By name: refused before the lookup's helper thread (whose wake-up used to leave the
    // simulation with nothing to run: a false deadlock).
    let port = addr.port();
    let by_name = sim::run(0, async move {
        magpie::net::TcpStream::connect(("localhost", port)).await
    })
    .unwrap_err();
    assert_eq!(by_name.kind(), std::io::ErrorKind::Unsupported);
    assert!(
        by_name.to_string().contains("magpie::sim::duplex"),
        "{by_name}"
    );
    // A Unix socket's bind makes no file.
    #[cfg(unix)]
    {
        let path = std::env::temp_dir().join(format!("magpie-sim-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let bound = sim::run(0, {
            let path = path.clone();
            async move { magpie::net::UnixListener::bind(&path).map(drop) }
        });
        assert_eq!(bound.unwrap_err().kind(), std::io::ErrorKind::Unsupported);
        assert!(!path.exists(), "the refused bind made the socket file");
    }
}

#[test]
fn a_detached_tasks_panic_fails_the_run_with_its_seed() {
    // Regression: the panic was printed by the panic hook and the run passed.
    let body = || async {
        drop(magpie::spawn(async {
            magpie::task::yield_now().await;
            panic!("the background invariant broke");
        }));
        for _ in 0..10 {
            magpie::task::yield_now().await;
        }
    };
    match Sim::new(4).run(body()) {
        Err(err @ SimError::TaskPanicked { seed: 4, .. }) => {
            let SimError::TaskPanicked { panic, .. } = &err else {
                unreachable!()
            };
            assert_eq!(
                panic.message.as_deref(),
                Some("the background invariant broke")
            );
            assert!(panic.location.file().ends_with("sim.rs"), "{panic:?}");
            assert!(err.to_string().starts_with("seed 4: "), "{err}");
        }
        other => panic!("expected TaskPanicked, got {other:?}"),
    }
    // A handle held but never awaited: seen when the main future is dropped at its end.
    let held = Sim::new(4).run(async {
        let handle = magpie::spawn(async { panic!("nobody looks") });
        magpie::task::yield_now().await;
        magpie::task::yield_now().await;
        drop(handle);
    });
    assert!(
        matches!(held, Err(SimError::TaskPanicked { .. })),
        "{held:?}"
    );
    // A panic retrieved through its handle is the body's business, not a failure of the run.
    let retrieved =
        Sim::new(4).run(async { magpie::spawn(async { panic!("seen") }).await.is_err() });
    assert!(retrieved.unwrap().output);
    // Opted out: the run completes.
    assert!(Sim::new(4)
        .unhandled_panic(magpie::UnhandledPanic::Ignore)
        .run(body())
        .is_ok());
}

#[test]
fn spawn_blocking_runs_on_the_simulation_thread_in_seeded_order() {
    let sim_thread = std::thread::current().id();
    let order = |seed| {
        sim::run(seed, async move {
            let log = Arc::new(Mutex::new(Vec::new()));
            let jobs: Vec<_> = (0..5)
                .map(|i| {
                    let log = log.clone();
                    magpie::spawn_blocking(move || {
                        assert_eq!(std::thread::current().id(), sim_thread);
                        log.lock().unwrap().push(i);
                    })
                })
                .collect();
            for job in jobs {
                job.await.unwrap();
            }
            let log = log.lock().unwrap().clone();
            log
        })
    };
    assert_eq!(order(9), order(9));
    assert!((0..20).any(|seed| order(seed) != order(9)));
}

#[test]
fn duplex_streams_carry_every_byte_through_seeded_partial_reads_and_writes() {
    use magpie::prelude::{AsyncReadExt, AsyncWriteExt};
    let reads = |seed| {
        sim::run(seed, async {
            let (mut client, mut server) = sim::duplex(16);
            let message: Vec<u8> = (0..=255).collect();
            let sent = message.clone();
            let writer = magpie::spawn(async move {
                client.write_all(&sent).await.unwrap();
                client.close().await.unwrap();
            });
            let (mut received, mut sizes) = (Vec::new(), Vec::new());
            let mut buf = [0u8; 64];
            loop {
                let n = server.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                sizes.push(n);
                received.extend_from_slice(&buf[..n]);
            }
            writer.await.unwrap();
            assert_eq!(received, message);
            sizes
        })
    };
    let sizes = reads(3);
    assert_eq!(sizes, reads(3));
    assert!(sizes.iter().all(|&n| n <= 16), "{sizes:?}");
    assert!(
        sizes.iter().any(|&n| n < 16),
        "some reads are cut short: {sizes:?}"
    );
    assert_ne!(reads(3), reads(4));
}

#[test]
fn a_dropped_duplex_end_breaks_the_pipe() {
    use magpie::prelude::{AsyncReadExt, AsyncWriteExt};
    sim::run(0, async {
        let (mut a, b) = sim::duplex(4);
        drop(b);
        let err = a.write_all(b"hi").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
        let mut buf = [0u8; 1];
        assert_eq!(a.read(&mut buf).await.unwrap(), 0, "the end of the stream");
    });
}

#[test]
fn task_groups_and_combinators_work_inside() {
    let finished = Arc::new(AtomicUsize::new(0));
    sim::check(0..20, |_| {
        let finished = finished.clone();
        async move {
            let mut group = magpie::task::TaskGroup::new();
            for i in 0..4u64 {
                group.spawn(async move {
                    sleep(Duration::from_millis(10 * i)).await;
                    Ok::<u64, std::io::Error>(i)
                });
            }
            let mut outputs = group.join().await.unwrap();
            outputs.sort_unstable();
            assert_eq!(outputs, [0, 1, 2, 3]);
            let first = magpie::race(
                async {
                    sleep(Duration::from_secs(1)).await;
                    "slow"
                },
                async {
                    sleep(Duration::from_millis(1)).await;
                    "quick"
                },
            )
            .await;
            assert_eq!(first, "quick");
            finished.fetch_add(1, Ordering::Relaxed);
        }
    });
    assert_eq!(finished.load(Ordering::Relaxed), 20);
}

#[test]
#[should_panic(expected = "runs do not nest")]
fn a_simulation_inside_a_simulation_is_refused() {
    sim::run(0, async { sim::run(1, async {}) });
}

#[test]
fn a_task_pending_at_the_end_is_cancelled_and_its_timer_removed() {
    let dropped = Arc::new(AtomicUsize::new(0));
    struct CountDrop(Arc<AtomicUsize>);
    impl Drop for CountDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let counter = CountDrop(dropped.clone());
    sim::run(0, async move {
        drop(magpie::spawn(async move {
            let _counter = counter;
            sleep(Duration::from_secs(60)).await;
        }));
        magpie::task::yield_now().await;
    });
    assert_eq!(dropped.load(Ordering::Relaxed), 1);
    // The next run on this thread starts with no timer of the last one pending.
    let elapsed = Sim::new(0)
        .run(async { sleep(Duration::from_millis(1)).await })
        .unwrap()
        .elapsed;
    assert_eq!(elapsed, Duration::from_millis(1));
}

/// Which of two sleeps with the same deadline `race` returns, over a few rounds.
async fn equal_deadline_races() -> Vec<&'static str> {
    let mut winners = Vec::new();
    for _ in 0..8 {
        let left = async {
            sleep(Duration::from_millis(10)).await;
            "left"
        };
        let right = async {
            sleep(Duration::from_millis(10)).await;
            "right"
        };
        winners.push(magpie::race(left, right).await);
    }
    winners
}

#[test]
fn select_and_race_follow_the_seed() {
    let first = sim::run(11, equal_deadline_races());
    for _ in 0..4 {
        assert_eq!(sim::run(11, equal_deadline_races()), first);
    }
    let all: Vec<&str> = (0..10)
        .flat_map(|seed| sim::run(seed, equal_deadline_races()))
        .collect();
    assert!(all.contains(&"left") && all.contains(&"right"), "{all:?}");
}

/// Tasks with timers at many levels of the wheel, some due together.
async fn timer_heavy() {
    let tasks: Vec<_> = (0..12u64)
        .map(|i| {
            magpie::spawn(async move {
                sleep(Duration::from_millis(
                    [3, 3, 70, 900, 900, 65_000][i as usize % 6],
                ))
                .await;
                magpie::task::yield_now().await;
                sleep(Duration::from_micros(250 * i)).await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

fn timer_trace(seed: u64) -> Vec<u64> {
    Sim::new(seed)
        .record_trace()
        .run(timer_heavy())
        .unwrap()
        .trace
}

#[test]
fn a_seed_replays_the_same_timers_whatever_ran_on_the_thread_before() {
    let fresh: Vec<Vec<u64>> = (0..4)
        .map(|seed| {
            std::thread::spawn(move || timer_trace(seed))
                .join()
                .unwrap()
        })
        .collect();
    // On this thread, after other runs (which moved its virtual clock and wheels on).
    sim::run(99, async { sleep(Duration::from_secs(7 * 3600)).await });
    for (seed, expected) in fresh.iter().enumerate() {
        assert_eq!(&timer_trace(seed as u64), expected, "seed {seed}");
        assert_eq!(&timer_trace(seed as u64), expected, "seed {seed}, again");
    }
}

#[test]
fn a_thousand_year_sleep_ends_at_exactly_that_virtual_time() {
    let thousand_years = Duration::from_secs(1000 * 365 * 24 * 3600);
    let slept = sim::run(0, async move {
        let start = now();
        sleep(thousand_years).await;
        now() - start
    });
    assert_eq!(slept, thousand_years);
}

#[test]
fn a_pending_main_future_whose_drop_spawns_still_reports_the_deadlock() {
    struct SpawnsOnDrop;
    impl Drop for SpawnsOnDrop {
        fn drop(&mut self) {
            drop(magpie::spawn(async {}));
        }
    }
    let outcome = Sim::new(0).run(async {
        let _guard = SpawnsOnDrop;
        std::future::pending::<()>().await;
    });
    assert!(matches!(outcome, Err(SimError::Deadlock(_))), "{outcome:?}");
}

#[test]
fn a_timer_made_outside_the_simulation_is_refused_inside_it() {
    let outside = sleep(Duration::from_millis(5));
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim::run(0, outside)))
        .unwrap_err();
    let message = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(
        message.contains("created outside magpie's deterministic runtime"),
        "{message}"
    );
}

#[test]
fn a_timer_made_inside_the_simulation_is_refused_outside_it() {
    // Made inside, handed out unpolled.
    let inside = sim::run(0, async { Some(sleep(Duration::from_millis(5))) }).unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        magpie::block_on(inside);
    }))
    .unwrap_err();
    let message = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(
        message.contains("created inside magpie's deterministic runtime"),
        "{message}"
    );
}

#[test]
fn a_simulation_on_a_worker_thread_is_refused() {
    let rt = magpie::Runtime::builder()
        .worker_threads(1)
        .build()
        .unwrap();
    let err = rt
        .block_on(rt.spawn(async { sim::run(0, async {}) }))
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("called from a magpie worker thread"),
        "{message}"
    );
}
