//! A full pool: creates fail with NoSpace and make nothing, while deleting snapshots, by hand
//! and by expiry, still works and the daemon keeps answering.
//!
//! The test makes its own small pool and restarts the daemon on it with a test clock, then
//! starts the normal daemon again.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hoody_snapd_tests::*;

const WORK_DIR: &str = "/tmp/hoody-full";
const POOL: &str = "hoodyfull";

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn full_pool_rejects_creates_and_deletes_work() {
    require_vm();
    std::fs::create_dir_all(WORK_DIR).unwrap();
    let image = format!("{WORK_DIR}/pool.img");
    run("truncate", &["-s", "256M", &image]);
    run(
        "zpool",
        &[
            "create",
            "-f",
            "-o",
            "cachefile=none",
            "-O",
            &format!("mountpoint={WORK_DIR}/mnt"),
            POOL,
            &image,
        ],
    );
    // A volume without a sparse flag reserves its whole size; 60 MiB is what fits beside the
    // pool's metadata and slop space in 256 MiB.
    run("zfs", &["create", "-V", "60M", &format!("{POOL}/volume")]);
    let clock_file = format!("{WORK_DIR}/clock");
    write_clock(&clock_file, 0);
    let config = format!("{WORK_DIR}/config.toml");
    std::fs::write(
        &config,
        format!(
            "[zfs]\nroot = \"{POOL}/hoody/containers\"\ninternal_root = \"{POOL}/hoody/internal\"\n\
             [expiry]\nmax_sleep_seconds = 1\nretry_seconds = 2\n[log]\ntarget = \"stderr\"\n"
        ),
    )
    .unwrap();
    stop_daemon();
    start_daemon_with(&config, &[("HOODY_SNAPD_CLOCK_FILE", &clock_file)]);

    let id = "filler";
    client_ok(&["containers", "create", "--container", id]);
    let dataset = format!("{POOL}/hoody/containers/{id}");
    let expiring = create_snapshot(id, "expiring", 1);
    std::fs::write(mountpoint(&dataset).join("first"), vec![1u8; 1 << 20]).unwrap();
    let by_hand = create_snapshot(id, "by-hand", 0);
    let fill = Command::new("dd")
        .args([
            "if=/dev/urandom",
            &format!("of={}/fill", mountpoint(&dataset).display()),
            "bs=1M",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&fill.stderr).contains("No space left"),
        "the pool did not fill up"
    );
    run("sync", &[]);
    assert_eq!(zfs_get("available", &dataset), "0");
    let before = snapshot_names(&dataset);

    let create = client(&[
        "--json",
        "snapshots",
        "create",
        "--container",
        id,
        "--alias",
        "too-much",
    ]);
    assert_eq!(create.code, 8, "{}", create.stdout);
    assert_eq!(create.json()["error"], "icu.hoody.Snapd1.Error.NoSpace");
    assert_eq!(
        snapshot_names(&dataset),
        before,
        "a failed create left a snapshot"
    );
    let container = client(&["--json", "containers", "create", "--container", "another"]);
    assert_eq!(container.code, 8, "{}", container.stdout);
    assert!(!zfs_exists(&format!("{POOL}/hoody/containers/another")));

    client_ok(&[
        "snapshots",
        "delete",
        "--container",
        id,
        "--name",
        "by-hand",
    ]);
    assert!(!zfs_exists(&format!(
        "{dataset}@{}",
        by_hand["name"].as_str().unwrap()
    )));
    let expires =
        chrono::DateTime::parse_from_rfc3339(expiring["expires_at"].as_str().unwrap()).unwrap();
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    write_clock(&clock_file, expires.timestamp() + 5 - real);
    let expired = format!("{dataset}@{}", expiring["name"].as_str().unwrap());
    wait_until(
        "expiry deletes on the full pool",
        Duration::from_secs(20),
        || !zfs_exists(&expired),
    );
    client_ok(&["containers", "list"]);

    stop_daemon();
    run("zpool", &["destroy", POOL]);
    start_daemon(None);
}
