//! The reactor loop drives an installed timer driver: it fires due deadlines (future, past and
//! sub-resolution ones) and sleeps, rather than spins, while a deadline is pending.

use magpie_reactor::timer_hook::{notify_reactor, set_timer_driver, DriverAlreadySet, TimerDriver};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Generous safety net; a passing run takes milliseconds.
const SAFETY: Duration = Duration::from_secs(20);

#[derive(Default)]
struct State {
    pending: Vec<Instant>,
    /// `(deadline, now passed to fire_expired)` of every fired deadline.
    fired: Vec<(Instant, Instant)>,
    calls: u64,
}

#[derive(Default)]
struct TestDriver {
    state: Mutex<State>,
    changed: Condvar,
}

impl TimerDriver for TestDriver {
    fn fire_expired(&self, now: Instant) -> Option<Instant> {
        let mut s = self.state.lock().unwrap();
        s.calls += 1;
        let (due, pending): (Vec<_>, Vec<_>) = s.pending.iter().partition(|d| **d <= now);
        s.pending = pending;
        s.fired.extend(due.into_iter().map(|d| (d, now)));
        self.changed.notify_all();
        s.pending.iter().min().copied()
    }
}

fn driver() -> &'static TestDriver {
    static DRIVER: OnceLock<&'static TestDriver> = OnceLock::new();
    DRIVER.get_or_init(|| {
        let d: &'static TestDriver = Box::leak(Box::default());
        set_timer_driver(d).expect("first driver");
        d
    })
}

/// Tests share the one process-wide driver; run them one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn add_and_wait_fired(deadline: Instant) -> Instant {
    let d = driver();
    d.state.lock().unwrap().pending.push(deadline);
    notify_reactor();
    let start = Instant::now();
    let mut s = d.state.lock().unwrap();
    loop {
        if let Some(&(_, now)) = s.fired.iter().find(|(dl, _)| *dl == deadline) {
            return now;
        }
        assert!(start.elapsed() < SAFETY, "deadline never fired");
        s = d
            .changed
            .wait_timeout(s, Duration::from_millis(100))
            .unwrap()
            .0;
    }
}

#[test]
fn future_deadline_fires_at_or_after_it() {
    let _g = serial();
    let deadline = Instant::now() + Duration::from_millis(20);
    let fired_at = add_and_wait_fired(deadline);
    assert!(fired_at >= deadline);
}

#[test]
fn past_deadline_fires() {
    let _g = serial();
    let deadline = Instant::now() - Duration::from_millis(50);
    add_and_wait_fired(deadline);
}

#[test]
fn deadline_rounding_to_zero_fires() {
    let _g = serial();
    for _ in 0..50 {
        let deadline = Instant::now() + Duration::from_nanos(1);
        let fired_at = add_and_wait_fired(deadline);
        assert!(fired_at >= deadline);
    }
}

#[test]
fn pending_deadline_does_not_spin_the_loop() {
    let _g = serial();
    let d = driver();
    let before = d.state.lock().unwrap().calls;
    // One deadline ~150 ms ahead and no I/O: the loop should sleep towards it in a handful of
    // turns. A spinning loop would call the driver many thousands of times in that window.
    add_and_wait_fired(Instant::now() + Duration::from_millis(150));
    let turns = d.state.lock().unwrap().calls - before;
    assert!(
        turns < 200,
        "reactor loop spun: {turns} turns for one deadline"
    );
}

#[test]
fn second_driver_is_rejected() {
    let _g = serial();
    driver();
    static OTHER: TestDriver = TestDriver {
        state: Mutex::new(State {
            pending: Vec::new(),
            fired: Vec::new(),
            calls: 0,
        }),
        changed: Condvar::new(),
    };
    assert_eq!(set_timer_driver(&OTHER), Err(DriverAlreadySet));
}

#[test]
fn every_notification_wakes_an_idle_reactor_which_then_sleeps() {
    let _g = serial();
    let d = driver();
    // No deadline pending: the reactor blocks with no timeout. Each notification must wake it
    // (so the notifier is re-armed after every one it consumes) ...
    for _ in 0..100 {
        let before = d.state.lock().unwrap().calls;
        notify_reactor();
        let start = Instant::now();
        let mut s = d.state.lock().unwrap();
        while s.calls == before {
            assert!(
                start.elapsed() < SAFETY,
                "a notification did not wake the reactor"
            );
            s = d
                .changed
                .wait_timeout(s, Duration::from_millis(100))
                .unwrap()
                .0;
        }
    }
    // ... and, with nothing to do, it then sleeps instead of turning. (Sleep so a spinning loop
    // would have had thousands of turns; the assertion is on the count.)
    std::thread::sleep(Duration::from_millis(20));
    let before = d.state.lock().unwrap().calls;
    std::thread::sleep(Duration::from_millis(50));
    let turns = d.state.lock().unwrap().calls - before;
    assert!(turns < 10, "idle reactor loop spun: {turns} turns");
}
