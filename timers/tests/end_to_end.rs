//! End-to-end timer tests: timers registered in the process store and fired by the reactor
//! thread. Nothing here asserts how late a timer is, only that it is never early and that
//! everything completes (with generous safety-net timeouts).

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use futures_lite::StreamExt;
use magpie_timers::{
    interval, interval_at, sleep, sleep_until, timeout, timeout_at, Elapsed, Interval, MissedTicks,
    Sleep, Timeout,
};

/// Safety net for waits on the reactor: far beyond any plausible lateness.
const SAFETY_NET: Duration = Duration::from_secs(30);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A waker that records its id in a shared log, in wake order.
struct Recorder {
    id: usize,
    log: Arc<Mutex<Vec<usize>>>,
}

impl Wake for Recorder {
    fn wake(self: Arc<Self>) {
        self.log.lock().unwrap().push(self.id);
    }
}

fn poll_once<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn error<T: std::error::Error + Send + Sync + 'static>() {}
    send_sync::<Sleep>();
    send_sync::<Interval>();
    send_sync::<Timeout<Sleep>>();
    send_sync::<MissedTicks>();
    error::<Elapsed>();
    assert_eq!(Elapsed::new().to_string(), "deadline has elapsed");
}

#[test]
fn timers_fire_in_deadline_order() {
    let log = Arc::new(Mutex::new(Vec::new()));
    // Registering all 30 must finish before the first is due; a thread stalled past that
    // starts over (bounded), so that only the store's order is tested, not the machine's speed.
    let mut sleeps: Vec<Sleep> = Vec::new();
    for attempt in 0.. {
        assert!(
            attempt < 20,
            "could not register 30 sleeps within 1 s, 20 times"
        );
        log.lock().unwrap().clear();
        let start = Instant::now() + ms(1000);
        // Deadlines 3 ms apart, registered in scrambled order.
        let order: Vec<usize> = (0..30).map(|i| (i * 17) % 30).collect();
        sleeps = order
            .iter()
            .map(|&id| {
                let mut s = sleep_until(start + ms(3 * id as u64));
                let waker = Waker::from(Arc::new(Recorder {
                    id,
                    log: log.clone(),
                }));
                let _ = poll_once(&mut s, &waker);
                s
            })
            .collect();
        if Instant::now() < start {
            // Polled before any deadline: every sleep registered, none completed.
            break;
        }
        drop(std::mem::take(&mut sleeps));
    }
    let give_up = Instant::now() + SAFETY_NET;
    while log.lock().unwrap().len() < 30 && Instant::now() < give_up {
        thread::sleep(ms(5));
    }
    assert_eq!(*log.lock().unwrap(), (0..30).collect::<Vec<_>>());
    // Woken means due: every sleep is now complete.
    let noop = Waker::from(Arc::new(Recorder {
        id: usize::MAX,
        log: Arc::new(Mutex::new(Vec::new())),
    }));
    for s in &mut sleeps {
        assert!(poll_once(s, &noop).is_ready());
    }
}

#[test]
fn sleep_is_never_early() {
    for d in [0, 1, 2, 3, 5, 8, 13] {
        let deadline = Instant::now() + ms(d);
        block_on(sleep_until(deadline));
        assert!(Instant::now() >= deadline, "{d} ms sleep completed early");
        let start = Instant::now();
        block_on(sleep(ms(d)));
        assert!(start.elapsed() >= ms(d));
    }
}

#[test]
fn sleep_can_move_between_threads() {
    let deadline = Instant::now() + ms(50);
    let mut s = sleep_until(deadline);
    let log = Arc::new(Mutex::new(Vec::new()));
    let first = Waker::from(Arc::new(Recorder {
        id: 1,
        log: log.clone(),
    }));
    // Registers here (unless the thread stalled past the deadline already).
    let _ = poll_once(&mut s, &first);
    // Finished on another thread, with another waker: the registration follows it.
    thread::spawn(move || block_on(s)).join().unwrap();
    assert!(Instant::now() >= deadline);
}

#[test]
fn timeout_returns_ok_when_the_future_wins() {
    let out = block_on(timeout(SAFETY_NET, async {
        sleep(ms(2)).await;
        "done"
    }));
    assert_eq!(out, Ok("done"));
    assert_eq!(block_on(timeout(ms(1), async { 1 })), Ok(1));
    // The future is polled first: ready wins even when the deadline has already passed.
    let past = Instant::now();
    thread::sleep(ms(2));
    assert_eq!(block_on(timeout_at(past, async { 2 })), Ok(2));
}

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn timeout_elapses_and_cancels_the_inner_future() {
    let dropped = Arc::new(AtomicBool::new(false));
    let guard = DropFlag(dropped.clone());
    let inner = async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    };
    let deadline = Instant::now() + ms(10);
    let mut limited = pin!(timeout_at(deadline, inner));
    assert_eq!(block_on(limited.as_mut()), Err(Elapsed::new()));
    assert!(Instant::now() >= deadline, "elapsed early");
    // Cancelled when the deadline won, not only when `Timeout` itself is dropped.
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn unrepresentable_durations_never_elapse() {
    // `Duration::MAX` overflows `Instant`: the sleep never completes and the time limit never
    // applies, without panicking.
    assert_eq!(
        block_on(timeout(ms(5), sleep(Duration::MAX))),
        Err(Elapsed::new())
    );
    assert_eq!(block_on(timeout(Duration::MAX, sleep(ms(1)))), Ok(()));
    let mut forever = interval(Duration::MAX);
    block_on(forever.tick());
    assert!(block_on(timeout(ms(5), forever.tick())).is_err());
}

/// Ticks taken after the test blocked its thread through several periods.
struct Stalled {
    start: Instant,
    period: Duration,
    /// `(called at, returned)` for the ticks after the stall.
    after: Vec<(Instant, Instant)>,
}

fn stall_interval(policy: MissedTicks, ticks_after: usize) -> Stalled {
    let period = ms(20);
    // The first tick must be taken on time, or the missed-tick policy would already apply to
    // it; a thread stalled for a period here starts over (bounded).
    let (start, mut every) = (0..)
        .map(|attempt| {
            assert!(
                attempt < 20,
                "could not take a first tick on time, 20 times"
            );
            let start = Instant::now();
            let mut every = interval_at(start, period);
            every.set_missed_ticks(policy);
            assert_eq!(block_on(every.tick()), start);
            (start, every)
        })
        .find(|(start, _)| Instant::now() < *start + period)
        .expect("an endless range");
    // Block the thread (not just the task) for five and a half periods.
    thread::sleep(period * 11 / 2);
    let after = (0..ticks_after)
        .map(|_| {
            let called = Instant::now();
            let tick = block_on(every.tick());
            assert!(tick <= Instant::now(), "tick completed before its instant");
            (called, tick)
        })
        .collect();
    Stalled {
        start,
        period,
        after,
    }
}

#[test]
fn interval_burst_catches_up_every_missed_tick() {
    let s = stall_interval(MissedTicks::Burst, 7);
    let ticks: Vec<Instant> = s.after.iter().map(|&(_, t)| t).collect();
    let expected: Vec<Instant> = (1..=7).map(|k| s.start + s.period * k).collect();
    assert_eq!(ticks, expected);
}

#[test]
fn interval_delay_restarts_from_the_late_tick() {
    let s = stall_interval(MissedTicks::Delay, 3);
    let (_, late) = s.after[0];
    assert_eq!(
        late,
        s.start + s.period,
        "the missed tick is delivered late"
    );
    // The next tick is one period after the late tick was taken.
    let (called_second, second) = s.after[1];
    assert!(second >= s.after[0].0 + s.period);
    assert!(second <= called_second + s.period);
    // Then on the new schedule (or later still, if this thread was itself late again).
    assert!(s.after[2].1 >= second + s.period);
}

#[test]
fn interval_skip_resumes_on_the_original_grid() {
    let s = stall_interval(MissedTicks::Skip, 3);
    let (_, late) = s.after[0];
    assert_eq!(late, s.start + s.period);
    let (called_second, second) = s.after[1];
    let offset = (second - s.start).as_nanos();
    assert_eq!(
        offset % s.period.as_nanos(),
        0,
        "on the start + k * period grid"
    );
    // At least 5.5 periods had passed, so ticks 2..=5 were skipped.
    assert!(second >= s.start + s.period * 6);
    assert!(second <= called_second + s.period);
    // Then on the same grid (the next point, unless this thread was late again).
    let third = s.after[2].1;
    assert_eq!((third - s.start).as_nanos() % s.period.as_nanos(), 0);
    assert!(third >= second + s.period);
}

#[test]
fn interval_reset_and_stream() {
    let mut every = interval(ms(3));
    let first = block_on(every.next()).unwrap();
    let before = Instant::now();
    every.reset();
    let next = block_on(every.next()).unwrap();
    assert!(next >= before + ms(3));
    assert!(next > first);
}

#[test]
#[should_panic(expected = "period must be non-zero")]
fn zero_period_panics() {
    let _ = interval(Duration::ZERO);
}

/// Wakes its slot's index into a shared ready queue and unparks the polling thread.
struct Slot {
    index: usize,
    queue: Arc<Mutex<Vec<usize>>>,
    thread: thread::Thread,
}

impl Wake for Slot {
    fn wake(self: Arc<Self>) {
        self.queue.lock().unwrap().push(self.index);
        self.thread.unpark();
    }
}

/// Drives `sleeps` to completion on the current thread, polling only the woken ones, and
/// checks that none completes before its deadline. Returns how many completed.
fn drive_all(sleeps: Vec<Sleep>) -> usize {
    let queue = Arc::new(Mutex::new(Vec::new()));
    let wakers: Vec<Waker> = (0..sleeps.len())
        .map(|index| {
            Waker::from(Arc::new(Slot {
                index,
                queue: queue.clone(),
                thread: thread::current(),
            }))
        })
        .collect();
    let mut sleeps: Vec<Option<Sleep>> = sleeps.into_iter().map(Some).collect();
    let mut pending = sleeps.len();
    let check = |sleeps: &mut Vec<Option<Sleep>>, index: usize| {
        let Some(s) = sleeps[index].as_mut() else {
            return false;
        };
        if poll_once(s, &wakers[index]).is_ready() {
            let deadline = s.deadline().unwrap();
            assert!(Instant::now() >= deadline, "sleep {index} completed early");
            sleeps[index] = None;
            return true;
        }
        false
    };
    for index in 0..sleeps.len() {
        pending -= usize::from(check(&mut sleeps, index));
    }
    let give_up = Instant::now() + SAFETY_NET;
    while pending > 0 && Instant::now() < give_up {
        let woken = std::mem::take(&mut *queue.lock().unwrap());
        if woken.is_empty() {
            thread::park_timeout(ms(100));
        }
        for index in woken {
            pending -= usize::from(check(&mut sleeps, index));
        }
    }
    sleeps.len() - pending
}

#[test]
fn hundred_thousand_concurrent_sleeps_on_a_runtime_all_complete_none_early() {
    const SLEEPS: u64 = 100_000;
    let completed = magpie_executor::run(async {
        let handles: Vec<_> = (0..SLEEPS)
            .map(|i| {
                magpie_executor::spawn(async move {
                    let deadline = Instant::now() + ms(1 + i * 7 % 50);
                    sleep_until(deadline).await;
                    assert!(Instant::now() >= deadline, "sleep {i} completed early");
                })
            })
            .collect();
        let mut completed = 0;
        for handle in handles {
            handle.await.expect("sleep task panicked");
            completed += 1;
        }
        completed
    });
    assert_eq!(completed, SLEEPS);
}

/// The same without an executor: sleeps polled by hand on plain threads.
#[test]
fn hundred_thousand_concurrent_sleeps_on_plain_threads_all_complete_none_early() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 25_000;
    let completed = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let completed = completed.clone();
            thread::spawn(move || {
                let sleeps = (0..PER_THREAD)
                    .map(|i| sleep(ms(1 + ((t * PER_THREAD + i) * 7 % 50) as u64)))
                    .collect();
                completed.fetch_add(drive_all(sleeps), Ordering::SeqCst);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(completed.load(Ordering::SeqCst), THREADS * PER_THREAD);
}

/// Panics in `wake`: a buggy executor's waker.
struct PanickingWaker;

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("a waker that panics (planted by the test)");
    }
}

/// Counts its wakes.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_panicking_waker_does_not_lose_the_timers_fired_with_it() {
    let counting = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let good = Waker::from(counting.clone());
    let bad = Waker::from(Arc::new(PanickingWaker));
    // One deadline for all: they fire in one batch, the panicking one in the middle. A second
    // off, so that no stall while they are polled (the first poll may start the reactor) lets
    // them fire before the last is polled.
    let deadline = Instant::now() + ms(1000);
    let mut sleeps: Vec<Sleep> = (0..21).map(|_| sleep_until(deadline)).collect();
    for (i, sleep) in sleeps.iter_mut().enumerate() {
        let waker = if i == 10 { &bad } else { &good };
        assert!(poll_once(sleep, waker).is_pending());
    }
    let start = Instant::now();
    while counting.0.load(Ordering::SeqCst) < 20 {
        assert!(
            start.elapsed() < SAFETY_NET,
            "only {} of the 20 good timers fired",
            counting.0.load(Ordering::SeqCst)
        );
        thread::sleep(ms(5));
    }
}

#[test]
fn resetting_an_awaited_sleep_to_a_passed_deadline_wakes_it_at_once() {
    // On a virtual clock nothing fires unless the test moves time: a wake seen here came
    // from the reset itself.
    let clock = magpie_timers::VirtualClockGuard::enter();
    let counting = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(counting.clone());
    let mut sleep = sleep(Duration::from_secs(10));
    assert!(poll_once(&mut sleep, &waker).is_pending());
    sleep.reset(clock.now());
    assert_eq!(counting.0.load(Ordering::SeqCst), 1, "woken by the reset");
    assert_eq!(poll_once(&mut sleep, &waker), Poll::Ready(()));
    assert_eq!(clock.pending_timers(), 0);
    assert_eq!(clock.advance_to_next_timer(), None, "no timer left");
}

#[test]
fn a_sleep_kept_from_an_earlier_virtual_run_leaves_the_next_runs_timers_alone() {
    let counting = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(counting.clone());
    let mut kept = {
        let clock = magpie_timers::VirtualClockGuard::enter();
        let mut kept = sleep(Duration::from_secs(1));
        assert!(poll_once(&mut kept, &waker).is_pending());
        // Fires; the sleep, not polled again, still holds its timer's key.
        assert!(clock.advance_to_next_timer().is_some());
        kept
    };
    // The next run may take the same (empty) store from the pool of idle clocks.
    let clock = magpie_timers::VirtualClockGuard::enter();
    let next_run = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let next_waker = Waker::from(next_run.clone());
    let mut timer = sleep(Duration::from_secs(5));
    assert!(poll_once(&mut timer, &next_waker).is_pending());
    // The kept sleep, reset and then dropped, must touch only its own (fired) timer.
    kept.reset(clock.now() + Duration::from_secs(60));
    drop(kept);
    assert_eq!(
        clock.pending_timers(),
        1,
        "the next run's timer is still there"
    );
    assert!(clock.advance_to_next_timer().is_some());
    assert_eq!(next_run.0.load(Ordering::SeqCst), 1, "and it fires");
}
