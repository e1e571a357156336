//! Subprocesses: piped stdio as async streams, exit waits with no thread per child, clear
//! results for waiting twice, killing an exited child and a missing program, no zombies.

// Unix only: subprocesses are (`magpie::process` is `cfg(unix)`).
#![cfg(unix)]

use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use magpie_reactor::process::Command;
use std::io::ErrorKind;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Whether the OS still has a process (running, or a zombie nobody reaped) with this pid.
fn process_exists(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// Threads of this process right now.
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

#[test]
fn output_captures_stdout_stderr_and_status() {
    let output = future::block_on(
        Command::new("sh")
            .args(["-c", "echo out; echo err >&2; exit 3"])
            .output(),
    )
    .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(output.stdout, b"out\n");
    assert_eq!(output.stderr, b"err\n");
}

#[test]
fn piped_stdin_and_stdout_stream_both_ways() {
    future::block_on(async {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let big: Vec<u8> = (0..256 * 1024).map(|i: u32| (i % 251) as u8).collect();
        // Write and read at once: 256 KiB is more than a pipe holds.
        let writer = async {
            stdin.write_all(&big).await.unwrap();
            drop(stdin); // end of file for cat
        };
        let reader = async {
            let mut back = Vec::new();
            stdout.read_to_end(&mut back).await.unwrap();
            back
        };
        let ((), back) = future::zip(writer, reader).await;
        assert!(back == big, "cat sent every byte back in order");
        assert!(child.wait().await.unwrap().success());
    });
}

#[test]
fn waiting_twice_gives_the_same_status_and_leaves_no_zombie() {
    future::block_on(async {
        let mut child = Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
        let pid = child.id();
        let first = child.wait().await.unwrap();
        let second = child.wait().await.unwrap();
        assert_eq!(first.code(), Some(7));
        assert_eq!(first, second);
        assert_eq!(child.try_wait().unwrap(), Some(first));
        assert!(!process_exists(pid), "reaped: no zombie");
    });
}

#[test]
fn killing_a_running_child_and_an_exited_one() {
    future::block_on(async {
        let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
        let status = sleeper.kill().await.unwrap();
        assert!(!status.success());
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(libc::SIGKILL));
        }
        // Killing it again: it has exited and been reaped; the same status, no error.
        assert_eq!(sleeper.kill().await.unwrap(), status);

        let mut quick = Command::new("true").spawn().unwrap();
        let done = quick.wait().await.unwrap();
        assert_eq!(
            quick.kill().await.unwrap(),
            done,
            "killing an exited child is no error"
        );
    });
}

#[test]
fn a_missing_program_is_not_found() {
    let err = Command::new("/nonexistent/magpie-no-such-program")
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err =
        future::block_on(Command::new("magpie-no-such-program-in-path").status()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn many_children_are_waited_for_without_a_thread_each() {
    future::block_on(async {
        let before = thread_count();
        let mut children: Vec<_> = (0..32)
            .map(|i| {
                Command::new("sh")
                    .args(["-c", &format!("sleep 0.2; exit {}", i % 5)])
                    .spawn()
                    .unwrap()
            })
            .collect();
        // All 32 wait at once, and the process has gained no thread per child.
        let during = thread_count();
        assert!(
            during < before + 8,
            "{before} threads before, {during} while 32 children run"
        );
        for (i, child) in children.iter_mut().enumerate() {
            assert_eq!(child.wait().await.unwrap().code(), Some((i % 5) as i32));
        }
    });
}

#[test]
fn kill_on_drop_kills_and_the_orphan_is_reaped() {
    let child = Command::new("sleep")
        .arg("60")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id();
    drop(child);
    // The next spawn or wait reaps the killed orphan.
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_exists(pid) {
        assert!(
            Instant::now() < deadline,
            "the killed child was never reaped"
        );
        future::block_on(Command::new("true").status()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_child_waited_for_inside_a_runtime_task() {
    let rt = magpie_executor::Runtime::builder()
        .worker_threads(2)
        .build()
        .unwrap();
    let status = rt.block_on(async {
        magpie_executor::spawn(async { Command::new("sh").args(["-c", "exit 4"]).status().await })
            .await
            .unwrap()
            .unwrap()
    });
    assert_eq!(status.code(), Some(4));
}

/// As std's `output`: the child's stdin is empty, not the parent's (a child that reads stdin
/// gets end-of-file at once), and the command's own settings are left alone.
#[test]
fn output_gives_the_child_an_empty_stdin_and_keeps_the_command_as_it_was() {
    // This process's stdin, for the length of the check: a pipe with something in it, so a
    // child that inherited it would print it. (No other test here lets a child read stdin.)
    let mut fds = [0; 2];
    // SAFETY: `pipe` fills the two-element array with two new descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: plain descriptor calls on descriptors we own (and 0, which we restore below).
    let saved = unsafe {
        assert_eq!(
            libc::write(
                fds[1],
                b"secret
"
                .as_ptr()
                .cast(),
                7
            ),
            7
        );
        libc::close(fds[1]);
        let saved = libc::dup(0);
        assert!(saved >= 0);
        assert_eq!(libc::dup2(fds[0], 0), 0);
        libc::close(fds[0]);
        saved
    };
    let output = future::block_on(Command::new("cat").output());
    // SAFETY: puts the saved stdin back and closes the copy.
    unsafe {
        libc::dup2(saved, 0);
        libc::close(saved);
    }
    let output = output.unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "",
        "the child read an empty stdin, not ours"
    );
    future::block_on(async {
        let mut cat = Command::new("cat");
        assert!(cat.output().await.unwrap().status.success());
        // The command still spawns with the defaults (nothing piped).
        let mut child = cat.stdin(Stdio::null()).spawn().unwrap();
        assert!(child.stdout.is_none() && child.stderr.is_none());
        assert!(child.wait().await.unwrap().success());
        // A stdin the caller set is kept.
        let output = Command::new("cat")
            .stdin(Stdio::piped())
            .output()
            .await
            .unwrap();
        assert!(output.status.success());
    });
}

#[test]
fn a_spawn_refused_where_real_io_is_off_starts_no_process() {
    let marker = std::env::temp_dir().join(format!("magpie-refused-spawn-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let guard = magpie_reactor::real_io::RealIoDenied::enter("a simulation runs here");
    let err = Command::new("sh")
        .arg("-c")
        .arg(format!("touch '{}'", marker.display()))
        .spawn()
        .expect_err("real I/O is off on this thread");
    drop(guard);
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported, "{err}");
    // A process started anyway would have made the file by now.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !marker.exists(),
        "the refused spawn ran the program all the same"
    );
}

#[test]
fn closing_stdin_sends_end_of_file_while_the_handle_lives() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = future::block_on(async {
            let mut child = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"hello").await.unwrap();
            // Closed, not dropped: cat must see end-of-file all the same.
            stdin.close().await.unwrap();
            let mut back = Vec::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_end(&mut back)
                .await
                .unwrap();
            let late = stdin.write(b"more").await.unwrap_err();
            assert_eq!(late.kind(), ErrorKind::BrokenPipe, "{late}");
            stdin.close().await.unwrap(); // again: nothing to do
            assert!(child.wait().await.unwrap().success());
            back
        });
        let _ = tx.send(result);
    });
    let back = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("cat read end-of-file and exited (it hung when close only flushed)");
    assert_eq!(back, b"hello");
}
