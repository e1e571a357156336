//! Every option of `#[magpie::main]` reaches the runtime; attributes and docs are kept.

/// The program.
#[magpie::main(
    worker_threads = 2,
    thread_name = "svc",
    max_blocking_threads = 1,
    global_queue_interval = 31,
    task_cache_bytes = 65536
)]
#[allow(unused_mut)]
async fn main() {
    let worker = magpie::spawn(async { std::thread::current().name().map(str::to_owned) });
    let worker = worker.await.unwrap().unwrap();
    assert!(worker == "svc-0" || worker == "svc-1", "{worker}");
    let blocking = magpie::spawn_blocking(|| std::thread::current().name().map(str::to_owned));
    assert_eq!(blocking.await.unwrap().as_deref(), Some("svc-blocking"));
}
