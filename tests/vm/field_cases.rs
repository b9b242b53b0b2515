//! Failures that users of other ZFS snapshot tools hit, as regression tests on the real pool.

use std::time::Duration;

use hoody_snapd_contract::Error;
use hoody_snapd_tests::*;

fn write(dataset: &str, text: &str) {
    std::fs::write(mountpoint(dataset).join("state"), text).unwrap();
}

fn read(dataset: &str) -> String {
    std::fs::read_to_string(mountpoint(dataset).join("state")).unwrap()
}

/// Lists the half-made datasets whose names contain `id`, leaving out those of other tests
/// that run at the same time. The ids of this file are ASCII, so they appear unescaped.
fn half_made_datasets_of(id: &str) -> Vec<String> {
    half_made_datasets()
        .into_iter()
        .filter(|name| name.contains(id))
        .collect()
}

/// Checks that the family of `id` has exactly `names` with their aliases, by `zfs list` and by
/// the client.
fn check_snapshots(id: &str, names: &[(&str, &str)]) {
    let wanted: Vec<&str> = names.iter().map(|(name, _)| *name).collect();
    assert_eq!(family_snapshot_names(id), wanted, "zfs list");
    let listed = client_ok(&["snapshots", "list", "--container", id]);
    let listed = listed["data"].as_array().unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        wanted
    );
    for (name, alias) in names {
        let full = find_snapshot(id, name).unwrap();
        assert_eq!(zfs_get("icu.hoody:alias", &full), *alias, "{full}");
    }
}

#[test]
fn restore_past_snapshot_with_clone_copy() {
    let id = unique_id("past-copy");
    let copy = unique_id("past-copy-clone");
    let dataset = create_container(&id);
    let mut names = Vec::new();
    for (index, alias) in ["s1", "s2", "s3"].iter().enumerate() {
        write(&dataset, &format!("state {index}"));
        names.push(
            create_snapshot(&id, alias, 0)["name"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    client_ok(&[
        "containers",
        "copy",
        "--from",
        &id,
        "--snapshot",
        "s3",
        "--container",
        &copy,
        "--clone",
    ]);
    let copy_dataset = dataset_of(&copy).unwrap();

    client_ok(&["snapshots", "restore", "--container", &id, "--name", "s1"]);
    assert_eq!(read(&dataset), "state 0");
    check_snapshots(
        &id,
        &[(&names[0], "s1"), (&names[1], "s2"), (&names[2], "s3")],
    );
    assert_eq!(read(&copy_dataset), "state 2", "the clone copy changed");
    client_ok(&["snapshots", "restore", "--container", &id, "--name", "s3"]);
    assert_eq!(read(&dataset), "state 2");
    check_snapshots(
        &id,
        &[(&names[0], "s1"), (&names[1], "s2"), (&names[2], "s3")],
    );
}

#[test]
fn restore_past_held_snapshot() {
    let id = unique_id("past-hold");
    let dataset = create_container(&id);
    let mut names = Vec::new();
    for (index, alias) in ["s1", "s2", "s3"].iter().enumerate() {
        write(&dataset, &format!("state {index}"));
        names.push(
            create_snapshot(&id, alias, 0)["name"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    zfs(&["hold", "field-test", &format!("{dataset}@{}", names[1])]);

    client_ok(&["snapshots", "restore", "--container", &id, "--name", "s1"]);
    assert_eq!(read(&dataset), "state 0");
    check_snapshots(
        &id,
        &[(&names[0], "s1"), (&names[1], "s2"), (&names[2], "s3")],
    );
    let held = find_snapshot(&id, &names[1]).unwrap();
    assert_eq!(zfs_get("userrefs", &held), "1", "the hold on s2 was lost");
    zfs(&["release", "field-test", &held]);
}

#[test]
fn copy_racing_delete_copies_or_not_found() {
    let source = unique_id("race-src");
    let dataset = create_container(&source);
    write(&dataset, "racing");
    for round in 0..100 {
        let alias = format!("r{round}");
        let target = format!("{source}-copy-{round}");
        create_snapshot(&source, &alias, 0);
        let (copied, deleted) = block_on(async {
            let (_connection, proxy) = proxy().await;
            let mut finished = proxy.receive_job_finished().await.unwrap();
            let copy = proxy.copy_container(&source, &alias, &target, "", Default::default());
            let delete = proxy.delete_snapshot(&source, &alias);
            let (copy, delete) = futures_util::future::join(copy, delete).await;
            let copied = match copy {
                Ok(job) => loop {
                    use futures_util::StreamExt;
                    let signal = finished.next().await.expect("signal stream ended");
                    let args = signal.args().unwrap();
                    if args.job == job {
                        let error = args.error.to_string();
                        assert!(
                            args.success || error == "icu.hoody.Snapd1.Error.NotFound",
                            "round {round}: copy failed with {error}: {}",
                            args.message
                        );
                        break args.success;
                    }
                },
                Err(Error::NotFound(_)) => false,
                Err(other) => panic!("round {round}: copy failed with {other:?}"),
            };
            (copied, delete.is_ok())
        });
        assert!(deleted, "round {round}: the delete failed");
        match dataset_of(&target) {
            Some(copy) => {
                assert!(copied, "round {round}: a copy exists for a failed job");
                assert_eq!(
                    read(&copy),
                    "racing",
                    "round {round}: the copy is not complete"
                );
                client_ok(&["containers", "delete", "--container", &target]);
            }
            None => assert!(!copied, "round {round}: the job succeeded without a copy"),
        }
        // Other tests of this binary run copies at the same time, so only this test's datasets
        // count.
        let left = half_made_datasets_of(&source);
        assert!(left.is_empty(), "round {round}: {left:?}");
    }
}

#[test]
fn killed_client_leaves_restore_whole() {
    let id = unique_id("killed");
    let dataset = create_container(&id);
    write(&dataset, "one");
    let one = create_snapshot(&id, "one", 0);
    write(&dataset, "two");
    let two = create_snapshot(&id, "two", 0);

    let mut child = std::process::Command::new(std::env::var("HOODY_SNAP_BIN").unwrap())
        .args(["snapshots", "restore", "--container", &id, "--name", "one"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    child.kill().ok();
    child.wait().ok();

    // A change to the same container waits for the container's lock, so it returns after the
    // restore has finished, if the restore started at all.
    client_ok(&[
        "snapshots",
        "alias",
        "--container",
        &id,
        "--name",
        "two",
        "--alias",
        "two",
    ]);
    let entries: Vec<String> = journal_entries()
        .into_iter()
        .filter(|e| e.contains(&id))
        .collect();
    assert!(entries.is_empty(), "{entries:?}");
    let names = [one["name"].as_str().unwrap(), two["name"].as_str().unwrap()];
    check_snapshots(&id, &[(names[0], "one"), (names[1], "two")]);
    let left = half_made_datasets_of(&id);
    assert!(left.is_empty(), "{left:?}");
    let state = read(&dataset);
    assert!(state == "one" || state == "two", "content {state:?}");
}
