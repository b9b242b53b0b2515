//! The D-Bus surface: busctl with plain arguments, introspection, signals, and the client's
//! message when the daemon is not running. Access control is in access.rs.

use std::process::Command;

use futures_util::StreamExt;
use hoody_snapd_contract::INTROSPECTION_XML;
use hoody_snapd_tests::*;

/// Extracts the manager interface element from introspection XML, one trimmed line each.
fn manager_interface(xml: &str) -> Vec<String> {
    let start = xml
        .find("<interface name=\"icu.hoody.Snapd1.Manager\">")
        .expect("interface present");
    let end = start + xml[start..].find("</interface>").expect("interface closed");
    xml[start..end]
        .lines()
        .map(|line| line.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn busctl_introspection_matches_shipped_xml() {
    let output = busctl_as(
        None,
        &[
            "introspect",
            "--xml-interface",
            "icu.hoody.Snapd1",
            "/icu/hoody/Snapd1",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let live = String::from_utf8(output.stdout).unwrap();

    assert_eq!(
        manager_interface(&live),
        manager_interface(INTROSPECTION_XML)
    );
}

#[test]
fn busctl_creates_snapshot_with_plain_arguments() {
    let id = unique_id("busctl");
    let created = busctl_call(None, "CreateContainer", "ss", &[&id, "tools"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let dataset = dataset_of(&id).expect("zfs list shows the container");

    let snapshot = busctl_call(None, "CreateSnapshot", "ssu", &[&id, "from busctl", "3"]);
    assert!(
        snapshot.status.success(),
        "{}",
        String::from_utf8_lossy(&snapshot.stderr)
    );
    let names = snapshot_names(&dataset);
    assert_eq!(names.len(), 1);
    assert_eq!(
        zfs_get("icu.hoody:alias", &format!("{dataset}@{}", names[0])),
        "from busctl"
    );

    let restored = busctl_call(
        None,
        "RestoreSnapshot",
        "ssa{sv}",
        &[&id, "from busctl", "0"],
    );
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let deleted = busctl_call(None, "DeleteSnapshot", "ss", &[&id, &names[0]]);
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    assert!(snapshot_names(&dataset).is_empty());
}

#[test]
fn busctl_reports_error_message() {
    let output = busctl_call(None, "ListSnapshots", "s", &["no-such-container"]);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success());
    assert!(stderr.contains("no-such-container"), "{stderr}");
    assert!(stderr.contains("not found"), "{stderr}");
}

#[test]
fn snapshot_created_signal_is_emitted() {
    let id = unique_id("signal");
    create_container(&id);
    block_on(async {
        let (_connection, proxy) = proxy().await;
        let mut created = proxy.receive_snapshot_created().await.unwrap();
        let snapshot = proxy.create_snapshot(&id, "signalled", 0).await.unwrap();
        let signal = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            loop {
                let signal = created.next().await.expect("signal stream ended");
                let args = signal.args().unwrap();
                if args.container == id {
                    return (args.name.to_string(), args.alias.to_string());
                }
            }
        })
        .await
        .expect("no SnapshotCreated signal within 30 s");
        assert_eq!(signal, (snapshot.name.clone(), "signalled".to_string()));
    });
}

#[test]
fn version_property_is_readable() {
    let output = busctl_as(
        Some("nobody"),
        &[
            "get-property",
            "icu.hoody.Snapd1",
            "/icu/hoody/Snapd1",
            "icu.hoody.Snapd1.Manager",
            "Version",
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.starts_with("s \""), "{stdout}");
}

#[test]
fn client_reports_daemon_not_running() {
    require_vm();
    let socket = format!("/tmp/empty-bus-{}.sock", std::process::id());
    let mut bus = Command::new("dbus-daemon")
        .args([
            "--session",
            "--nofork",
            &format!("--address=unix:path={socket}"),
        ])
        .spawn()
        .expect("cannot start a private dbus-daemon");
    for _ in 0..100 {
        if std::path::Path::new(&socket).exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let output = Command::new(std::env::var("HOODY_SNAP_BIN").unwrap())
        .args(["snapshots", "list", "--container", "c1"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", format!("unix:path={socket}"))
        .output()
        .unwrap();
    bus.kill().ok();
    bus.wait().ok();
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(9), "{stderr}");
    assert!(stderr.contains("hoody-snapd is not running"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
