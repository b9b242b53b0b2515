//! Copies of containers from snapshots: full copies by send and receive, instant copies as
//! clones, jobs and their signals, and copies from deleted containers.

use futures_util::StreamExt;
use hoody_snapd_tests::*;

#[test]
fn full_copy_survives_source_deletion() {
    let source = unique_id("copy-src");
    let target = unique_id("copy-dst");
    let source_dataset = create_container(&source);
    std::fs::write(mountpoint(&source_dataset).join("data"), "payload").unwrap();
    create_snapshot(&source, "golden", 0);

    client_ok(&[
        "containers",
        "copy",
        "--from",
        &source,
        "--snapshot",
        "golden",
        "--container",
        &target,
        "--project",
        "other",
    ]);
    let target_dataset = dataset_of(&target).expect("zfs list shows the copy");
    assert_eq!(
        zfs_get("origin", &target_dataset),
        "-",
        "a full copy is not a clone"
    );
    assert_eq!(zfs_get("icu.hoody:project-id", &target_dataset), "other");
    assert!(snapshot_names(&target_dataset).is_empty());

    client_ok(&[
        "snapshots",
        "delete",
        "--container",
        &source,
        "--name",
        "golden",
    ]);
    client_ok(&["containers", "delete", "--container", &source]);
    assert_eq!(
        std::fs::read_to_string(mountpoint(&target_dataset).join("data")).unwrap(),
        "payload"
    );
    // Other tests of this binary run copies at the same time, so only this copy's datasets count.
    let left: Vec<String> = half_made_datasets()
        .into_iter()
        .filter(|name| name.contains(&target))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn clone_copy_keeps_source_snapshot_hidden() {
    let source = unique_id("clone-src");
    let target = unique_id("clone-dst");
    let source_dataset = create_container(&source);
    std::fs::write(mountpoint(&source_dataset).join("data"), "shared").unwrap();
    let snapshot = create_snapshot(&source, "base", 0);
    let full = format!("{source_dataset}@{}", snapshot["name"].as_str().unwrap());

    client_ok(&[
        "containers",
        "copy",
        "--from",
        &source,
        "--snapshot",
        "base",
        "--container",
        &target,
        "--clone",
    ]);
    let target_dataset = dataset_of(&target).unwrap();
    assert_eq!(zfs_get("origin", &target_dataset), full);

    client_ok(&[
        "snapshots",
        "delete",
        "--container",
        &source,
        "--name",
        "base",
    ]);
    assert_eq!(zfs_get("defer_destroy", &full), "on");
    let listed = client_ok(&["snapshots", "list", "--container", &source]);
    assert!(listed["data"].as_array().unwrap().is_empty());
    assert_eq!(
        std::fs::read_to_string(mountpoint(&target_dataset).join("data")).unwrap(),
        "shared"
    );

    client_ok(&["containers", "delete", "--container", &target]);
    assert!(
        !zfs_exists(&full),
        "the deferred snapshot outlived its clone"
    );
}

#[test]
fn copy_from_deleted_container() {
    let source = unique_id("gone-src");
    let target = unique_id("gone-dst");
    let dataset = create_container(&source);
    std::fs::write(mountpoint(&dataset).join("data"), "kept").unwrap();
    create_snapshot(&source, "last", 0);
    client_ok(&["containers", "delete", "--container", &source]);

    client_ok(&[
        "containers",
        "copy",
        "--from",
        &source,
        "--snapshot",
        "last",
        "--container",
        &target,
    ]);
    let target_dataset = dataset_of(&target).unwrap();
    assert_eq!(
        std::fs::read_to_string(mountpoint(&target_dataset).join("data")).unwrap(),
        "kept"
    );
}

#[test]
fn copy_job_reports_by_signals() {
    let source = unique_id("job-src");
    let target = unique_id("job-dst");
    let dataset = create_container(&source);
    std::fs::write(mountpoint(&dataset).join("blob"), vec![7u8; 4 << 20]).unwrap();
    create_snapshot(&source, "big", 0);

    block_on(async {
        let (_connection, proxy) = proxy().await;
        let mut finished = proxy.receive_job_finished().await.unwrap();
        let started = std::time::Instant::now();
        let job = proxy
            .copy_container(&source, "big", &target, "", Default::default())
            .await
            .unwrap();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "CopyContainer did not return at once"
        );
        let args = tokio::time::timeout(std::time::Duration::from_secs(300), async {
            loop {
                let signal = finished.next().await.expect("signal stream ended");
                let args = signal.args().unwrap();
                if args.job == job {
                    return (
                        args.success,
                        args.error.to_string(),
                        args.message.to_string(),
                    );
                }
            }
        })
        .await
        .expect("no JobFinished within 300 s");
        assert_eq!(args, (true, String::new(), String::new()));
        let info = proxy.get_job(job).await.unwrap();
        assert_eq!(info.state, "succeeded");
        assert!(info.done >= 4 << 20, "progress counted {} bytes", info.done);
    });
    assert!(dataset_of(&target).is_some());
}

#[test]
fn copy_onto_existing_container_is_rejected() {
    let source = unique_id("dup-src");
    let target = unique_id("dup-dst");
    create_container(&source);
    create_container(&target);
    create_snapshot(&source, "s", 0);
    let result = client(&[
        "--json",
        "containers",
        "copy",
        "--from",
        &source,
        "--snapshot",
        "s",
        "--container",
        &target,
    ]);

    assert_eq!(result.code, 5, "{}", result.stdout);
    assert_eq!(
        result.json()["error"],
        "icu.hoody.Snapd1.Error.AlreadyExists"
    );
}
