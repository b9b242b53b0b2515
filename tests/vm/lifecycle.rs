//! Daemon lifecycle: SIGTERM releases the bus name and exits cleanly, and a restarted daemon
//! finds the containers and snapshots again from the pool's user properties alone.
//!
//! This binary stops the daemon that the other test binaries share, so it runs after them and
//! leaves a new daemon running, with its pid in the pid file.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hoody_snapd_tests::*;

const PID_FILE: &str = "/tmp/hoody-snapd.pid";

fn bus_name_owned() -> bool {
    busctl_as(None, &["status", "icu.hoody.Snapd1"])
        .status
        .success()
}

fn process_alive(pid: &str) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| stat.contains(") Z "))
            .unwrap_or(true)
}

fn wait_until(what: &str, timeout: Duration, condition: impl Fn() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

// The restarted daemon must outlive this test process, so it is never waited for here; init
// reaps it when it exits.
#[allow(clippy::zombie_processes)]
fn start_daemon() {
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(std::env::var("HOODY_DAEMON_LOG").unwrap())
        .unwrap();
    let child = Command::new(std::env::var("HOODY_SNAPD_BIN").unwrap())
        .args(["--config", &std::env::var("HOODY_CONFIG").unwrap()])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("cannot start hoody-snapd");
    std::fs::write(PID_FILE, child.id().to_string()).unwrap();
    wait_until(
        "the restarted daemon owns its name",
        Duration::from_secs(60),
        bus_name_owned,
    );
}

#[test]
fn sigterm_stops_and_restart_recovers_state() {
    require_vm();
    let id = unique_id("survivor");
    let dataset = create_container(&id);
    let snapshot = create_snapshot(&id, "survives restart", 5);

    let pid = std::fs::read_to_string(PID_FILE)
        .unwrap()
        .trim()
        .to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    wait_until("the daemon exits", Duration::from_secs(60), || {
        !process_alive(&pid)
    });
    assert!(
        !bus_name_owned(),
        "the bus name is still owned after SIGTERM"
    );
    let log = std::fs::read_to_string(std::env::var("HOODY_DAEMON_LOG").unwrap()).unwrap();
    assert!(
        log.contains("stopped; all operations finished"),
        "no clean stop in the log"
    );

    let down = client(&["snapshots", "list", "--container", &id]);
    assert_eq!(down.code, 9, "{}", down.stderr);

    start_daemon();
    let listed = client_ok(&["snapshots", "list", "--container", &id]);
    assert_eq!(listed["data"][0]["name"], snapshot["name"]);
    assert_eq!(listed["data"][0]["alias"], "survives restart");
    assert_eq!(listed["data"][0]["expires_at"], snapshot["expires_at"]);
    assert_eq!(zfs_get("icu.hoody:container-id", &dataset), id);
}
