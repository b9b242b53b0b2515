//! Daemon lifecycle: SIGTERM releases the bus name and exits cleanly, and a restarted daemon
//! finds the containers and snapshots again from the pool's user properties alone.
//!
//! This binary stops the daemon that the other test binaries share, so it runs after them and
//! leaves a new daemon running, with its pid in the pid file.

use hoody_snapd_tests::*;

#[test]
fn sigterm_stops_and_restart_recovers_state() {
    require_vm();
    let id = unique_id("survivor");
    let dataset = create_container(&id);
    let snapshot = create_snapshot(&id, "survives restart", 5);

    stop_daemon();
    let log = std::fs::read_to_string(std::env::var("HOODY_DAEMON_LOG").unwrap()).unwrap();
    assert!(
        log.contains("stopped; all operations finished"),
        "no clean stop in the log"
    );

    let down = client(&["snapshots", "list", "--container", &id]);
    assert_eq!(down.code, 9, "{}", down.stderr);

    start_daemon(None);
    let listed = client_ok(&["snapshots", "list", "--container", &id]);
    assert_eq!(listed["data"][0]["name"], snapshot["name"]);
    assert_eq!(listed["data"][0]["alias"], "survives restart");
    assert_eq!(listed["data"][0]["expires_at"], snapshot["expires_at"]);
    assert_eq!(zfs_get("icu.hoody:container-id", &dataset), id);
}
