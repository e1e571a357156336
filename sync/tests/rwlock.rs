//! `RwLock`: shared/exclusive access, writer preference against reader streams, cancellation.

mod common;

use std::sync::Arc;
use std::task::Poll;

use common::{poll_once, poll_with, tokio_rt, WakeCounter};
use futures_lite::future::block_on;
use magpie_sync::RwLock;

#[test]
fn many_readers_or_one_writer() {
    let lock = RwLock::new(0);
    let a = block_on(lock.read());
    let b = lock.try_read().unwrap();
    assert!(lock.try_write().is_none());
    drop((a, b));
    let mut w = block_on(lock.write());
    *w = 1;
    assert!(lock.try_read().is_none());
    assert!(lock.try_write().is_none());
    drop(w);
    assert_eq!(*lock.try_read().unwrap(), 1);
}

#[test]
fn a_waiting_writer_is_not_starved_by_new_readers() {
    let lock = RwLock::new(0);
    let reader = lock.try_read().unwrap();
    let mut writer = lock.write();
    assert!(poll_once(&mut writer).is_pending());
    // A reader arriving after the writer queues behind it.
    assert!(lock.try_read().is_none());
    let mut late_reader = lock.read();
    assert!(poll_once(&mut late_reader).is_pending());
    drop(reader);
    let Poll::Ready(mut guard) = poll_once(&mut writer) else {
        panic!("the writer goes first once the early reader leaves");
    };
    *guard = 7;
    assert!(poll_once(&mut late_reader).is_pending());
    drop(guard);
    let Poll::Ready(guard) = poll_once(&mut late_reader) else {
        panic!("the reader follows the writer");
    };
    assert_eq!(*guard, 7);
}

#[test]
fn a_run_of_readers_is_admitted_together_after_a_writer() {
    let lock = RwLock::new(());
    let w = lock.try_write().unwrap();
    let mut r1 = lock.read();
    let mut r2 = lock.read();
    let mut w2 = lock.write();
    assert!(poll_once(&mut r1).is_pending());
    assert!(poll_once(&mut r2).is_pending());
    assert!(poll_once(&mut w2).is_pending());
    drop(w);
    let g1 = poll_once(&mut r1);
    let g2 = poll_once(&mut r2);
    assert!(g1.is_ready() && g2.is_ready());
    assert!(poll_once(&mut w2).is_pending());
    drop((g1, g2));
    assert!(poll_once(&mut w2).is_ready());
}

#[test]
fn writer_dropped_right_after_handoff_passes_access_on() {
    let lock = RwLock::new(());
    let r = lock.try_read().unwrap();
    let mut writer = lock.write();
    let mut reader = lock.read();
    assert!(poll_once(&mut writer).is_pending());
    let wakes = WakeCounter::new();
    assert!(poll_with(&mut reader, &wakes.waker()).is_pending());
    drop(r); // handed to the writer
    assert_eq!(wakes.count(), 0);
    drop(writer);
    assert_eq!(wakes.count(), 1);
    assert!(poll_once(&mut reader).is_ready());
}

#[test]
fn dropping_a_queued_writer_admits_the_readers_behind_it() {
    let lock = RwLock::new(());
    let r = lock.try_read().unwrap();
    let mut writer = lock.write();
    let mut reader = lock.read();
    assert!(poll_once(&mut writer).is_pending());
    assert!(poll_once(&mut reader).is_pending());
    drop(writer);
    assert!(poll_once(&mut reader).is_ready());
    drop(r);
}

#[test]
fn stress_readers_and_writers_under_tokio() {
    const WRITERS: usize = 4;
    // Scaled down under Miri, which interprets every instruction (still contended).
    const ROUNDS: usize = if cfg!(miri) { 30 } else { 5_000 };
    let lock = Arc::new(RwLock::new((0usize, 0usize)));
    tokio_rt(2).block_on(async {
        let mut handles = Vec::new();
        for _ in 0..WRITERS {
            let writer_lock = lock.clone();
            handles.push(tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    let mut guard = writer_lock.write().await;
                    guard.0 += 1;
                    tokio::task::yield_now().await;
                    guard.1 += 1;
                }
            }));
            let lock = lock.clone();
            handles.push(tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    let guard = lock.read().await;
                    // Writers update both halves under one guard: readers never see them differ.
                    assert_eq!(guard.0, guard.1);
                }
            }));
        }
        for handle in handles {
            handle.await.unwrap();
        }
    });
    assert_eq!(*block_on(lock.read()), (WRITERS * ROUNDS, WRITERS * ROUNDS));
}
