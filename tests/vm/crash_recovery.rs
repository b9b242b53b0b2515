//! Crash safety: the daemon aborts at each step of each multi-step operation (a test-only fault
//! point, as abrupt as `kill -9`), restarts, and the pool must show no snapshot, alias or
//! expiry lost, no half-made dataset, and an operation either completed or undone.

use hoody_snapd_tests::*;

/// Runs `operation` against a daemon armed to abort at `point`, waits for the abort, and
/// starts a normal daemon, which recovers.
fn crash_at(point: &str, operation: impl FnOnce()) {
    stop_daemon();
    start_daemon(Some(point));
    let pid = daemon_pid();
    operation();
    wait_for_exit(&pid);
    start_daemon(None);
}

fn check_clean() {
    assert!(
        half_made_datasets().is_empty(),
        "half-made datasets: {:?}",
        half_made_datasets()
    );
    assert!(
        journal_entries().is_empty(),
        "journal entries left: {:?}",
        journal_entries()
    );
}

fn read(dataset: &str) -> String {
    std::fs::read_to_string(mountpoint(dataset).join("state")).unwrap()
}

fn restore_crash(point: &str, completed: bool) {
    let id = unique_id("crash-restore");
    let dataset = create_container(&id);
    std::fs::write(mountpoint(&dataset).join("state"), "one").unwrap();
    let one = create_snapshot(&id, "one", 3);
    std::fs::write(mountpoint(&dataset).join("state"), "two").unwrap();
    let two = create_snapshot(&id, "two", 0);
    std::fs::write(mountpoint(&dataset).join("state"), "unsaved").unwrap();

    crash_at(point, || {
        let result = client(&["snapshots", "restore", "--container", &id, "--name", "one"]);
        assert_ne!(
            result.code, 0,
            "the restore finished before the fault point {point}"
        );
    });

    check_clean();
    assert_eq!(zfs_get("mounted", &dataset), "yes");
    let names = [one["name"].as_str().unwrap(), two["name"].as_str().unwrap()];
    assert_eq!(family_snapshot_names(&id), names);
    let one_full = find_snapshot(&id, names[0]).unwrap();
    let two_full = find_snapshot(&id, names[1]).unwrap();
    assert_eq!(zfs_get("icu.hoody:alias", &one_full), "one");
    assert_eq!(
        zfs_get("icu.hoody:expires", &one_full),
        one["expires_at"].as_str().unwrap()
    );
    assert_eq!(zfs_get("icu.hoody:alias", &two_full), "two");
    assert_eq!(
        read(&dataset),
        if completed { "one" } else { "unsaved" },
        "after a crash at {point}"
    );
    let listed = client_ok(&["snapshots", "list", "--container", &id]);
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    client_ok(&["snapshots", "restore", "--container", &id, "--name", "two"]);
    assert_eq!(read(&dataset), "two");
}

#[test]
fn restore_crash_after_intent() {
    restore_crash("restore:after-intent", false);
}

#[test]
fn restore_crash_after_clone() {
    restore_crash("restore:after-clone", false);
}

#[test]
fn restore_crash_after_promote() {
    restore_crash("restore:after-promote", false);
}

#[test]
fn restore_crash_after_unmount() {
    restore_crash("restore:after-unmount", false);
}

#[test]
fn restore_crash_after_rename_old() {
    restore_crash("restore:after-rename-old", true);
}

#[test]
fn restore_crash_after_rename_new() {
    restore_crash("restore:after-rename-new", true);
}

#[test]
fn restore_crash_after_roles() {
    restore_crash("restore:after-roles", true);
}

#[test]
fn restore_crash_after_mount() {
    restore_crash("restore:after-mount", true);
}

fn copy_crash(point: &str, clone: bool, completed: bool) {
    let source = unique_id("crash-src");
    let target = unique_id("crash-dst");
    let source_dataset = create_container(&source);
    std::fs::write(mountpoint(&source_dataset).join("state"), "payload").unwrap();
    let snapshot = create_snapshot(&source, "golden", 4);

    crash_at(point, || {
        let mut args = vec![
            "containers",
            "copy",
            "--from",
            &source,
            "--snapshot",
            "golden",
            "--container",
            &target,
        ];
        args.push("--no-wait");
        if clone {
            args.push("--clone");
        }
        client(&args);
    });

    check_clean();
    let full = format!("{source_dataset}@{}", snapshot["name"].as_str().unwrap());
    assert_eq!(zfs_get("icu.hoody:alias", &full), "golden");
    assert_eq!(
        zfs_get("icu.hoody:expires", &full),
        snapshot["expires_at"].as_str().unwrap()
    );
    match dataset_of(&target) {
        Some(copied) => {
            assert!(completed, "a copy interrupted at {point} was kept");
            assert_eq!(zfs_get("mounted", &copied), "yes");
            assert_eq!(read(&copied), "payload");
        }
        None => assert!(
            !completed,
            "a copy interrupted at {point} was not completed"
        ),
    }
}

#[test]
fn copy_crash_after_intent() {
    copy_crash("copy:after-intent", false, false);
}

#[test]
fn copy_crash_after_receive() {
    copy_crash("copy:after-receive", false, false);
}

#[test]
fn copy_crash_after_properties() {
    copy_crash("copy:after-properties", false, false);
}

#[test]
fn copy_crash_after_rename() {
    copy_crash("copy:after-rename", false, true);
}

#[test]
fn copy_crash_after_mount() {
    copy_crash("copy:after-mount", false, true);
}

#[test]
fn clone_copy_crash_after_clone() {
    copy_crash("copy-clone:after-clone", true, true);
}

fn delete_crash(point: &str, completed: bool) {
    let id = unique_id("crash-delete");
    let dataset = create_container(&id);
    let snapshot = create_snapshot(&id, "kept", 2);

    crash_at(point, || {
        let result = client(&["containers", "delete", "--container", &id]);
        assert_ne!(
            result.code, 0,
            "the delete finished before the fault point {point}"
        );
    });

    check_clean();
    let name = snapshot["name"].as_str().unwrap();
    let full = find_snapshot(&id, name).expect("the snapshot survived");
    assert_eq!(zfs_get("icu.hoody:alias", &full), "kept");
    assert_eq!(
        zfs_get("icu.hoody:expires", &full),
        snapshot["expires_at"].as_str().unwrap()
    );
    let listed = client_ok(&["snapshots", "list", "--container", &id]);
    assert_eq!(listed["data"][0]["container_deleted"], completed);
    if completed {
        assert!(!zfs_exists(&dataset));
        assert_eq!(internal_datasets(&id)[0].1, "deleted");
    } else {
        assert_eq!(zfs_get("mounted", &dataset), "yes");
    }
}

#[test]
fn delete_crash_after_intent() {
    delete_crash("delete:after-intent", false);
}

#[test]
fn delete_crash_after_unmount() {
    delete_crash("delete:after-unmount", false);
}

#[test]
fn delete_crash_after_rename() {
    delete_crash("delete:after-rename", true);
}

#[test]
fn empty_delete_crash_after_unmount() {
    let id = unique_id("crash-empty");
    let dataset = create_container(&id);
    crash_at("delete-empty:after-unmount", || {
        let result = client(&["containers", "delete", "--container", &id]);
        assert_ne!(result.code, 0, "the delete finished before the fault point");
    });

    check_clean();
    assert_eq!(
        zfs_get("mounted", &dataset),
        "yes",
        "the container was not mounted again"
    );
    client_ok(&["containers", "delete", "--container", &id]);
    assert!(!zfs_exists(&dataset));
}
