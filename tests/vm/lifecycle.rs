//! Daemon lifecycle: SIGTERM releases the bus name and exits cleanly, and a restarted daemon
//! finds the containers and snapshots again from the pool's user properties alone.
//!
//! This binary stops the daemon that the other test binaries share, so tests/run.sh runs it
//! alone, before the others, and it leaves a new daemon running, with its pid in the pid file.

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

#[test]
fn without_polkit_only_root_is_allowed() {
    require_vm();
    let id = unique_id("polkit-down");
    let dataset = create_container(&id);
    client_ok(&[
        "containers",
        "set-owner",
        "--container",
        &id,
        "--owner",
        "alice",
    ]);

    stop_polkit();
    let _polkit = RestartPolkit;
    stop_daemon();
    start_daemon(None);
    assert!(
        daemon_log().contains("polkit is not running; only root may call hoody-snapd"),
        "the daemon did not say at start that polkit is missing"
    );
    // Even the owner is denied while polkit is missing, and the message gives the reason.
    let refused = client_as("alice", &["snapshots", "create", "--container", &id]);
    assert_eq!(refused.code, 7, "{}{}", refused.stdout, refused.stderr);
    let message = refused.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("polkit is not available"), "{message}");
    assert!(snapshot_names(&dataset).is_empty());
    let listed = client_as("alice", &["containers", "list"]);
    assert_eq!(listed.code, 7, "{}{}", listed.stdout, listed.stderr);
    create_snapshot(&id, "root still may", 0);

    start_polkit();
    client_as_ok("alice", &["snapshots", "create", "--container", &id]);
    assert_eq!(snapshot_names(&dataset).len(), 2);
}

/// Puts the test configuration back when a test that changes it ends, even by a panic.
struct RestoreConfig {
    path: String,
    original: String,
}

impl Drop for RestoreConfig {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, &self.original);
    }
}

/// Starts polkitd again when a test that stops it ends by a panic.
struct RestartPolkit;

impl Drop for RestartPolkit {
    fn drop(&mut self) {
        if std::thread::panicking() {
            start_polkit();
        }
    }
}

#[test]
fn reload_rejects_bad_config_keeps_old() {
    require_vm();
    let id = unique_id("reload");
    create_container(&id);
    let path = std::env::var("HOODY_CONFIG").unwrap();
    let original = std::fs::read_to_string(&path).unwrap();
    let _restore = RestoreConfig {
        path: path.clone(),
        original: original.clone(),
    };

    std::fs::write(
        &path,
        format!("{original}\n[snapshots]\nmax_expiry_days = 3\n"),
    )
    .unwrap();
    client_ok(&["reload"]);
    let long = client(&[
        "--json",
        "snapshots",
        "create",
        "--container",
        &id,
        "--expiry",
        "5",
    ]);
    assert_eq!(
        long.code, 4,
        "max_expiry_days = 3 is not in force: {}",
        long.stdout
    );

    // A misspelt key: refused, and the settings in force stay.
    std::fs::write(
        &path,
        format!("{original}\n[snapshots]\nmax_expiry_dayz = 9\n"),
    )
    .unwrap();
    let bad = client(&["--json", "reload"]);
    assert_eq!(bad.code, 4, "{}{}", bad.stdout, bad.stderr);
    assert!(bad.json()["message"]
        .as_str()
        .unwrap()
        .contains("max_expiry_dayz"));
    let still = client(&[
        "--json",
        "snapshots",
        "create",
        "--container",
        &id,
        "--expiry",
        "5",
    ]);
    assert_eq!(
        still.code, 4,
        "the bad file replaced the settings: {}",
        still.stdout
    );

    // A new root needs a restart: refused as well.
    std::fs::write(
        &path,
        original.replace("hoody/containers", "hoody/elsewhere"),
    )
    .unwrap();
    let moved = client(&["--json", "reload"]);
    assert_eq!(moved.code, 4, "{}{}", moved.stdout, moved.stderr);
    assert!(moved.json()["message"].as_str().unwrap().contains("[zfs]"));

    // SIGHUP reloads too.
    std::fs::write(&path, &original).unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &daemon_pid()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_until(
        "SIGHUP puts the original settings back",
        std::time::Duration::from_secs(30),
        || client(&["snapshots", "create", "--container", &id, "--expiry", "5"]).code == 0,
    );
    assert!(daemon_log().contains("configuration reloaded"));
}
