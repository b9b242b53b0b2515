//! A busy daemon still serves calls: list calls during a long copy each return within a second.
//!
//! The check is about time, so tests/guest/run-tests.sh runs this binary alone, with no other
//! test binary loading the VM at the same time.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hoody_snapd_tests::*;

#[test]
fn lists_answer_during_long_copy() {
    let source = unique_id("long-src");
    let target = unique_id("long-dst");
    let dataset = create_container(&source);
    let blob: Vec<u8> = (0..(96u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(mountpoint(&dataset).join("blob"), blob).unwrap();
    create_snapshot(&source, "big", 0);

    // The list calls go through one D-Bus connection, so each measures the daemon's reply time,
    // not the start of a client process on a machine that the copy keeps busy.
    let answered = AtomicU32::new(0);
    let (slowest, during_copy) = std::thread::scope(|scope| {
        let lister = scope.spawn(|| {
            block_on(async {
                let (_connection, proxy) = proxy().await;
                let mut slowest = Duration::ZERO;
                for _ in 0..50 {
                    let started = Instant::now();
                    proxy
                        .list_snapshots(&source)
                        .await
                        .expect("list failed during the copy");
                    slowest = slowest.max(started.elapsed());
                    answered.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                slowest
            })
        });
        client_ok(&[
            "containers",
            "copy",
            "--from",
            &source,
            "--snapshot",
            "big",
            "--container",
            &target,
        ]);
        let during_copy = answered.load(Ordering::Relaxed);
        (lister.join().unwrap(), during_copy)
    });
    assert!(
        during_copy >= 10,
        "only {during_copy} list calls answered while the copy ran"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "a list call took {slowest:?} during the copy"
    );
    assert!(dataset_of(&target).is_some());
}
