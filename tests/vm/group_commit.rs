//! Group commit: concurrent snapshot requests committed together in one transaction group, each
//! with its own properties and its own result.

use std::collections::HashSet;

use futures_util::future::join_all;
use hoody_snapd::zfs::{ErrorKind, SnapshotRequest, Zfs};
use hoody_snapd_contract::Error;
use hoody_snapd_tests::*;

/// Creates filesystems `NAME` for each name below a new scratch filesystem next to the daemon's
/// roots, and returns the scratch filesystem's name.
fn scratch(prefix: &str, names: &[&str]) -> String {
    let pool = container_root().split('/').next().unwrap().to_string();
    let base = format!("{pool}/{}", unique_id(prefix));
    zfs(&["create", "-o", "mountpoint=none", &base]);
    for name in names {
        zfs(&["create", &format!("{base}/{name}")]);
    }
    base
}

#[test]
fn channel_program_keeps_requests_apart() {
    let base = scratch("gc-apart", &["a", "b", "c", "d"]);
    let pool = base.split('/').next().unwrap();
    zfs(&["snapshot", &format!("{base}/b@taken")]);
    let zfs_handle = Zfs::open().expect("cannot open /dev/zfs");

    let first = [format!("{base}/a@s")];
    let taken = [format!("{base}/b@taken")];
    let half_missing = [format!("{base}/c@s"), format!("{base}/missing@s")];
    let last = [format!("{base}/d@s")];
    let requests = [
        SnapshotRequest {
            snapshots: &first,
            properties: &[("icu.hoody:alias", "one")],
        },
        SnapshotRequest {
            snapshots: &taken,
            properties: &[("icu.hoody:alias", "two")],
        },
        SnapshotRequest {
            snapshots: &half_missing,
            properties: &[("icu.hoody:alias", "three")],
        },
        SnapshotRequest {
            snapshots: &last,
            properties: &[
                ("icu.hoody:alias", "four"),
                ("icu.hoody:expires", "2030-01-01T00:00:00.000Z"),
            ],
        },
    ];
    let results = zfs_handle
        .snapshot_requests(pool, &requests)
        .expect("the channel program did not run");

    assert_eq!(results.len(), 4);
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert_eq!(
        results[1].as_ref().unwrap_err().error.kind,
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        results[2].as_ref().unwrap_err().error.kind,
        ErrorKind::NotFound
    );
    assert!(results[3].is_ok(), "{:?}", results[3]);

    assert_eq!(zfs_get("icu.hoody:alias", &first[0]), "one");
    assert_eq!(zfs_get("icu.hoody:alias", &last[0]), "four");
    assert_eq!(
        zfs_get("icu.hoody:expires", &last[0]),
        "2030-01-01T00:00:00.000Z"
    );
    assert_eq!(zfs_get("icu.hoody:alias", &taken[0]), "-");
    assert!(
        !zfs_exists(&half_missing[0]),
        "a request is all or nothing, but {} was made",
        half_missing[0]
    );
    assert_eq!(
        zfs_get("createtxg", &first[0]),
        zfs_get("createtxg", &last[0]),
        "the requests were not committed in one transaction group"
    );
    zfs(&["destroy", "-r", &base]);
}

#[test]
fn concurrent_creates_share_transaction_groups() {
    const COUNT: usize = 12;
    let ids: Vec<String> = (0..COUNT).map(|_| unique_id("gc-many")).collect();
    for id in &ids {
        create_container(id);
    }
    // One container already has the alias of its request, so that request fails
    // while the others in its group succeed.
    let clash = &ids[COUNT - 1];
    create_snapshot(clash, "take-11", 0);

    let results = block_on(async {
        let (_connection, proxy) = proxy().await;
        let calls = ids.iter().enumerate().map(|(number, id)| {
            let proxy = proxy.clone();
            let alias = format!("take-{number}");
            async move { proxy.create_snapshot(id, &alias, number as u32 + 1).await }
        });
        join_all(calls).await
    });

    let mut transaction_groups = HashSet::new();
    for (number, (id, result)) in ids.iter().zip(&results).enumerate() {
        if id == clash {
            assert!(
                matches!(result, Err(Error::AlreadyExists(_))),
                "{id}: {result:?}"
            );
            continue;
        }
        let created = result.as_ref().unwrap_or_else(|e| panic!("{id}: {e:?}"));
        let full = find_snapshot(id, &created.name).expect("zfs list shows the snapshot");
        assert_eq!(zfs_get("icu.hoody:alias", &full), format!("take-{number}"));
        assert_eq!(
            Some(zfs_get("icu.hoody:expires", &full)),
            created.expires_at,
            "{full}"
        );
        transaction_groups.insert(zfs_get("createtxg", &full));
    }
    assert!(
        transaction_groups.len() < COUNT - 1,
        "{} creates took {} transaction groups, so none were committed together",
        COUNT - 1,
        transaction_groups.len()
    );
    assert_eq!(
        family_snapshot_names(clash).len(),
        1,
        "the failed request made a snapshot"
    );
}
