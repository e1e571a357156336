//! The `tracing` feature with no subscriber installed (a dependency turned the feature on; the
//! application set up no `tracing`): debug mode's reports still reach stderr. In a file of its
//! own, so that no test of this process installs a subscriber.

use std::time::Duration;

/// Set in the child process that this test starts.
const CHILD: &str = "MAGPIE_TRACING_UNSUBSCRIBED_CHILD";

/// Regression (a review): with the feature on, a slow poll was only a `warn!` event, lost when
/// no subscriber was there to receive it: `MAGPIE_DEBUG=1` then printed nothing.
#[test]
fn slow_polls_are_written_on_stderr_when_no_subscriber_listens() {
    if std::env::var_os(CHILD).is_some() {
        let rt = magpie::Runtime::builder()
            .worker_threads(1)
            .slow_poll_threshold(Duration::from_millis(20))
            .build()
            .unwrap();
        rt.block_on(rt.spawn(async { std::thread::sleep(Duration::from_millis(80)) }))
            .unwrap();
        return;
    }
    // The child's stderr is what a user would see: run this same test there.
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "slow_polls_are_written_on_stderr_when_no_subscriber_listens",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(output.status.success(), "the child failed: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("slow poll"),
        "no report of the slow poll on stderr: {stderr:?}"
    );
}
