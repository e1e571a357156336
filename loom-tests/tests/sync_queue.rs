//! Loom models of `magpie_sync::Queue` (built on loom's types under `--cfg loom`).
#![cfg(loom)]

use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;
use magpie_loom_tests::model;
use magpie_sync::Queue;

/// A bounded(1) queue, two producers, one consumer, and `close` racing them. Every item is
/// either delivered to the consumer (and its `put` said `Ok`) or handed back to its putter
/// (`Err(PutError(item))`): none lost, none duplicated.
#[test]
fn close_racing_puts_delivers_or_hands_back() {
    model(|| {
        let queue = Arc::new(Queue::bounded(1));
        let producers: Vec<_> = [1u32, 2]
            .into_iter()
            .map(|item| {
                let queue = queue.clone();
                thread::spawn(move || match block_on(queue.put(item)) {
                    Ok(()) => (item, None),
                    Err(err) => (item, Some(err.into_inner())),
                })
            })
            .collect();
        let mut received = Vec::new();
        // The consumer takes what it can before and after the close.
        if let Ok(item) = queue.try_get() {
            received.push(item);
        }
        queue.close();
        while let Ok(item) = block_on(queue.get()) {
            received.push(item);
        }
        for producer in producers {
            let (item, handed_back) = producer.join().unwrap();
            match handed_back {
                None => assert!(received.contains(&item), "{item} was accepted but lost"),
                Some(back) => {
                    assert_eq!(back, item);
                    assert!(
                        !received.contains(&item),
                        "{item} delivered and handed back"
                    );
                }
            }
        }
        received.sort_unstable();
        received.dedup();
        assert!(received.len() <= 2);
    });
}
