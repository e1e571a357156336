//! A guided tour of magpie for asyncio users: every concept of the asyncio tutorials, in
//! order, each step printing what it shows and the measured time that proves it.
//!
//! ```sh
//! cargo run --release --example tour            # real delays (about 14 s)
//! cargo run --release --example tour -- --fast  # every delay divided by ten
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use magpie::sync::{Event, Lock, Queue};
use magpie::task::{self, GroupError, TaskGroup};
use magpie::time::{sleep, timeout};

/// Every delay of the tour, in seconds, goes through here (`--fast` divides it by ten).
struct Clock {
    scale: f64,
    start: Instant,
}

impl Clock {
    fn secs(&self, s: f64) -> Duration {
        Duration::from_secs_f64(s * self.scale)
    }

    /// Elapsed time since `since`, in tour seconds (so `--fast` prints the same numbers).
    fn took(&self, since: Instant) -> String {
        format!("{:.2} s", since.elapsed().as_secs_f64() / self.scale)
    }

    fn step(&self, n: u32, title: &str, asyncio: &str) {
        println!("\n[{n}] {title}    (asyncio: {asyncio})");
    }
}

/// Sets `ran_to_end`, or reports its cancellation when dropped first.
struct CancelProbe(&'static str);

impl Drop for CancelProbe {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        println!("    ({} dropped: cancelled at its `.await`)", self.0);
    }
}

async fn say_hello(clock: &Clock) {
    println!("    Hello ...");
    sleep(clock.secs(1.0)).await;
    println!("    ... World!");
}

async fn greet(clock: &Clock, name: &str, secs: f64) -> String {
    sleep(clock.secs(secs)).await;
    format!("Hello, {name}!")
}

async fn fetch(clock: &Clock, url: &str, secs: f64) -> String {
    sleep(clock.secs(secs)).await;
    format!("<{url}: {} bytes>", url.len() * 100)
}

fn main() {
    let fast = std::env::args().any(|a| a == "--fast");
    let clock = Arc::new(Clock {
        scale: if fast { 0.1 } else { 1.0 },
        start: Instant::now(),
    });
    println!(
        "magpie tour{}",
        if fast { " (fast: delays / 10)" } else { "" }
    );
    // One line per panic instead of the default report, so step 12 stays readable.
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        println!(
            "    (panic hook: {info} on thread {:?})",
            thread.name().unwrap_or("?")
        );
    }));

    // asyncio.run: build the event loop (here: one worker per core), run, shut down.
    magpie::run(tour(clock.clone()));
    event_loop_you_keep(&clock);
    println!("\nTour finished in {}.", clock.took(clock.start));
}

/// Step 15, the event loop as an object, outside `magpie::run`: asyncio's `get_event_loop()` and
/// `run_until_complete()`, with `get_running_loop()` inside it.
fn event_loop_you_keep(c: &Clock) {
    c.step(
        15,
        "a runtime you keep, run until a future completes",
        "loop = asyncio.get_event_loop(); loop.run_until_complete(...)",
    );
    let rt = magpie::Runtime::new().expect("the runtime starts");
    let t = Instant::now();
    let answer = rt.block_on(async {
        // get_running_loop(): the runtime this code runs on, to spawn onto from anywhere.
        let handle = magpie::Handle::current();
        let slow = handle.spawn(async { 40 });
        sleep(c.secs(0.5)).await;
        slow.await.unwrap() + 2
    });
    println!(
        "    run_until_complete returned {answer} after {}",
        c.took(t)
    );
    // The same loop runs more work later, until it is dropped (loop.close()).
    let again = rt.block_on(rt.spawn(async { "still running" })).unwrap();
    println!("    and again: {again}");
    drop(rt);
}

async fn tour(clock: Arc<Clock>) {
    let c = &*clock;

    // 1. A coroutine is an `async fn`; calling it does nothing until it is awaited.
    c.step(1, "a coroutine, awaited", "await say_hello()");
    let t = Instant::now();
    let coroutine = say_hello(c); // nothing printed yet: a coroutine object
    coroutine.await;
    println!("    took {} (one 1 s sleep)", c.took(t));

    // 2. Awaiting one after the other is sequential...
    c.step(
        2,
        "two awaits in a row run one after the other",
        "await a; await b",
    );
    let t = Instant::now();
    println!("    {}", greet(c, "Alice", 1.0).await);
    println!("    {}", greet(c, "Bob", 2.0).await);
    println!("    took {} (1 s + 2 s)", c.took(t));

    // 3. ... while tasks run concurrently (here even in parallel, on the worker threads).
    c.step(3, "two tasks sleeping 1 s and 2 s", "asyncio.create_task");
    let t = Instant::now();
    let a = magpie::spawn({
        let clock = clock.clone();
        async move { greet(&clock, "Alice", 1.0).await }
    });
    let b = magpie::spawn({
        let clock = clock.clone();
        async move { greet(&clock, "Bob", 2.0).await }
    });
    println!("    {} / {}", a.await.unwrap(), b.await.unwrap());
    println!("    took {} (about 2 s, not 3: they overlapped)", c.took(t));

    // 4. gather: several awaitables at once, results in input order.
    c.step(4, "join_all of three fetches", "await asyncio.gather(...)");
    let t = Instant::now();
    let pages = magpie::join_all([
        fetch(c, "a.example", 1.5),
        fetch(c, "bb.example", 0.5),
        fetch(c, "ccc.example", 1.0),
    ])
    .await;
    println!("    {pages:?}");
    println!("    took {} (the slowest, 1.5 s; order kept)", c.took(t));

    // 5. A future: a value that arrives later, set by somebody else.
    c.step(
        5,
        "a oneshot as a future",
        "loop.create_future() + set_result",
    );
    let t = Instant::now();
    let (setter, future) = magpie::sync::oneshot::<&str>();
    magpie::spawn({
        let clock = clock.clone();
        async move {
            sleep(clock.secs(1.0)).await;
            let _ = setter.send("the result");
        }
    });
    println!("    awaited: {:?}", future.await.unwrap());
    println!("    took {} (set after 1 s)", c.took(t));

    // 6. wait_for: a 5 s job cut off at 2 s; the job is dropped (cancelled).
    c.step(
        6,
        "timeout cuts a 5 s job at 2 s",
        "asyncio.wait_for(job, 2)",
    );
    let t = Instant::now();
    let job = async {
        let _probe = CancelProbe("the 5 s job");
        sleep(c.secs(5.0)).await;
        "finished"
    };
    match timeout(c.secs(2.0), job).await {
        Ok(v) => println!("    job returned {v:?}"),
        Err(elapsed) => println!("    Err({elapsed})  (asyncio.TimeoutError)"),
    }
    println!("    took {} (2 s, not 5)", c.took(t));

    // 7. Task.cancel: abort a running task.
    c.step(7, "cancelling a task", "task.cancel()");
    let sleeper = magpie::spawn(async {
        let _probe = CancelProbe("the sleeping task");
        sleep(Duration::from_secs(3600)).await;
    });
    sleep(c.secs(0.1)).await; // let it start sleeping
    sleeper.abort();
    let err = sleeper.await.unwrap_err();
    println!(
        "    handle resolved to: {err} (is_cancelled = {})",
        err.is_cancelled()
    );

    // 8. Lock: tasks on many threads update shared data, holding the lock across an await.
    c.step(8, "a Lock shared by 4 tasks", "async with lock:");
    let t = Instant::now();
    let balance = Arc::new(Lock::new(0u64));
    let depositors: Vec<_> = (0..4)
        .map(|i| {
            let balance = balance.clone();
            let clock = clock.clone();
            magpie::spawn(async move {
                for _ in 0..5 {
                    let mut guard = balance.lock().await;
                    let read = *guard;
                    sleep(clock.secs(0.02)).await; // an await inside the critical section
                    *guard = read + 10 + i;
                }
            })
        })
        .collect();
    magpie::join_all(depositors).await;
    println!(
        "    balance = {} (expected {}: no update lost)",
        *balance.lock().await,
        (0..4).map(|i| 5 * (10 + i)).sum::<u64>()
    );
    println!(
        "    took {} (20 locked sections of 0.02 s, one at a time)",
        c.took(t)
    );

    // 9. Event: many waiters released at once.
    c.step(9, "an Event releases every waiter", "asyncio.Event");
    let t = Instant::now();
    let ready = Arc::new(Event::new());
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let ready = ready.clone();
            magpie::spawn(async move {
                ready.wait().await;
                i
            })
        })
        .collect();
    sleep(c.secs(0.5)).await;
    ready.set();
    let woke = magpie::join_all(waiters).await;
    println!(
        "    woke: {:?}",
        woke.into_iter().map(Result::unwrap).collect::<Vec<_>>()
    );
    println!("    took {} (set after 0.5 s)", c.took(t));

    // 10. Queue: producers and consumers, task_done and join.
    c.step(
        10,
        "producer/consumer through a Queue",
        "asyncio.Queue, task_done, join",
    );
    let t = Instant::now();
    let queue = Queue::bounded(4);
    let consumed = Arc::new(AtomicUsize::new(0));
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let queue = queue.clone();
            let consumed = consumed.clone();
            let clock = clock.clone();
            magpie::spawn(async move {
                while let Ok(item) = queue.get().await {
                    sleep(clock.secs(0.05)).await; // work on the item
                    consumed.fetch_add(item, Ordering::SeqCst);
                    queue.task_done();
                }
            })
        })
        .collect();
    for item in 1..=12 {
        queue.put(item).await.unwrap();
    }
    queue.join().await; // every item put has been marked done
    println!(
        "    consumed total = {} (expected {})",
        consumed.load(Ordering::SeqCst),
        (1..=12).sum::<usize>()
    );
    queue.close();
    magpie::join_all(consumers).await;
    println!(
        "    took {} (12 items x 0.05 s over 3 consumers)",
        c.took(t)
    );

    // 11. to_thread: blocking code on the blocking pool, the event loop keeps going.
    c.step(
        11,
        "spawn_blocking keeps the loop free",
        "asyncio.to_thread",
    );
    let t = Instant::now();
    let blocking = magpie::spawn_blocking({
        let clock = clock.clone();
        move || {
            std::thread::sleep(clock.secs(1.0)); // a blocking call
            "blocking work done"
        }
    });
    let mut ticks = 0;
    while !blocking.is_finished() {
        sleep(c.secs(0.1)).await;
        ticks += 1;
    }
    println!(
        "    {} — the loop ticked {ticks} times meanwhile",
        blocking.await.unwrap()
    );
    println!("    took {}", c.took(t));

    // 12. A panic in a task is caught and reaches its handle; the runtime carries on.
    c.step(12, "a failing task", "an exception in a Task");
    let err = magpie::spawn(async { panic!("something broke") })
        .await
        .unwrap_err();
    println!("    handle resolved to: {err}");

    // 13. TaskGroup: when one task fails, its siblings are cancelled.
    c.step(
        13,
        "TaskGroup cancels siblings after a failure",
        "async with asyncio.TaskGroup()",
    );
    let t = Instant::now();
    let mut group = TaskGroup::new();
    for name in ["download", "resize"] {
        let clock = clock.clone();
        group.spawn(async move {
            let _probe = CancelProbe(name);
            sleep(clock.secs(5.0)).await;
            Ok(name)
        });
    }
    let clock2 = clock.clone();
    group.spawn(async move {
        sleep(clock2.secs(1.0)).await;
        Err("upload failed".to_string())
    });
    match group.join().await {
        Err(GroupError::Failed(e)) => println!("    group failed: {e}"),
        other => println!("    unexpected: {other:?}"),
    }
    println!(
        "    took {} (1 s, not 5: the siblings were cancelled)",
        c.took(t)
    );

    // 14. current_task and named tasks.
    c.step(14, "named tasks", "asyncio.current_task().get_name()");
    let named = task::Builder::new()
        .name("fetcher")
        .spawn(async { task::current().and_then(|t| t.name().map(str::to_owned)) })
        .unwrap();
    println!(
        "    running task's name: {:?}",
        named.await.unwrap().unwrap()
    );
}
