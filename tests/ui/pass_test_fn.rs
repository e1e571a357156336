//! `#[magpie::test]` accepts these (built without `--test` here, so they are only parsed and
//! expanded; tests/macros.rs runs the same shapes).

/// Awaits a task.
#[magpie::test]
async fn plain() {
    assert_eq!(magpie::spawn(async { 1 }).await.unwrap(), 1);
}

#[magpie::test(worker_threads = 1, thread_name = "t", max_blocking_threads = 2, global_queue_interval = 5)]
#[should_panic(expected = "boom")]
async fn with_options_and_should_panic() {
    panic!("boom");
}

#[magpie::test]
async fn returns_result() -> Result<(), std::num::ParseIntError> {
    "3".parse::<u8>()?;
    Ok(())
}

fn main() {}
