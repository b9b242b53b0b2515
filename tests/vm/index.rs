//! The daemon's index of snapshots agrees with `zfs list` after changes made by hand outside
//! the daemon.

use std::time::Duration;

use hoody_snapd_tests::*;

/// Returns the snapshot names that the daemon lists for a container, oldest first.
fn listed(id: &str) -> Vec<String> {
    client_ok(&["snapshots", "list", "--container", id])["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|snapshot| snapshot["name"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until changes are older than the whole seconds of `snapshots_changed`, so that the
/// next listing comes from the index without reading the snapshots again.
fn settle() {
    std::thread::sleep(Duration::from_secs(3));
}

#[test]
fn snapshots_made_by_hand_are_listed() {
    let id = unique_id("index-made");
    let dataset = create_container(&id);
    create_snapshot(&id, "first", 0);
    create_snapshot(&id, "second", 0);
    assert_eq!(listed(&id), family_snapshot_names(&id));
    settle();
    assert_eq!(listed(&id), family_snapshot_names(&id));

    zfs(&["snapshot", &format!("{dataset}@by-hand")]);
    let names = listed(&id);
    assert_eq!(names, family_snapshot_names(&id));
    assert_eq!(names.last().map(String::as_str), Some("by-hand"));
}

#[test]
fn snapshots_destroyed_by_hand_are_not_listed() {
    let id = unique_id("index-gone");
    let dataset = create_container(&id);
    let first = create_snapshot(&id, "first", 0)["name"]
        .as_str()
        .unwrap()
        .to_string();
    create_snapshot(&id, "second", 0);
    settle();
    assert_eq!(listed(&id).len(), 2);

    zfs(&["destroy", &format!("{dataset}@{first}")]);
    let names = listed(&id);
    assert_eq!(names, family_snapshot_names(&id));
    assert!(!names.contains(&first), "{names:?}");
}

#[test]
fn change_by_hand_in_same_second_is_seen() {
    let id = unique_id("index-second");
    let dataset = create_container(&id);
    for round in 0..5 {
        // The daemon's create and the listing happen within the second of the snapshot made
        // by hand, which `snapshots_changed` cannot tell apart.
        create_snapshot(&id, &format!("daemon-{round}"), 0);
        assert_eq!(listed(&id), family_snapshot_names(&id), "round {round}");
        zfs(&["snapshot", &format!("{dataset}@hand-{round}")]);
        assert_eq!(listed(&id), family_snapshot_names(&id), "round {round}");
    }
    settle();
    assert_eq!(listed(&id), family_snapshot_names(&id));
    assert_eq!(listed(&id).len(), 10);
}

#[test]
fn used_of_newest_snapshot_follows_writes() {
    let id = unique_id("index-used");
    let dataset = create_container(&id);
    let file = mountpoint(&dataset).join("data");
    std::fs::write(&file, incompressible(4 << 20, 7)).unwrap();
    let name = create_snapshot(&id, "before-overwrite", 0)["name"]
        .as_str()
        .unwrap()
        .to_string();
    let full = format!("{dataset}@{name}");
    settle();
    listed(&id);

    // Overwriting the file leaves its old blocks to the snapshot alone, so its `used` grows.
    std::fs::write(&file, incompressible(4 << 20, 9)).unwrap();
    zfs_sync();
    let by_zfs: u64 = zfs(&["get", "-Hp", "-o", "value", "used", &full])
        .trim()
        .parse()
        .unwrap();
    assert!(by_zfs >= 1 << 20, "used of {full} is {by_zfs}");
    let listed = client_ok(&["snapshots", "list", "--container", &id]);
    let used = listed["data"][0]["used"].as_u64().unwrap();
    assert_eq!(used, by_zfs);
}

/// Returns `length` bytes that compression cannot shrink, different for each seed.
fn incompressible(length: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..length)
        .map(|_| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Waits until the pool's dirty data is on disk, so that space properties are current.
fn zfs_sync() {
    let pool = container_root().split('/').next().unwrap().to_string();
    let status = std::process::Command::new("zpool")
        .args(["sync", &pool])
        .status()
        .unwrap();
    assert!(status.success(), "zpool sync {pool} failed");
}
