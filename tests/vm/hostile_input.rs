//! Names and values that break naive code: each is rejected with InvalidArgument and leaves the
//! pool unchanged, or is stored and listed back exactly.

use hoody_snapd_contract::Error;
use hoody_snapd_tests::*;

/// Lists the container ids that `zfs list` shows under the container root.
fn container_ids_in_pool() -> Vec<String> {
    zfs(&[
        "list",
        "-H",
        "-r",
        "-t",
        "filesystem",
        "-o",
        "icu.hoody:container-id",
        &container_root(),
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn invalid_container_ids_are_rejected() {
    let too_long = "a".repeat(300);
    let long_unicode = "é".repeat(60);
    let ids = [
        "a@b",
        "a%b",
        "a/b",
        "../x",
        "a#b",
        "a b",
        "a\tb",
        "a\nb",
        "a\u{7}b",
        "",
        " ",
        &too_long,
        &long_unicode,
    ];
    for id in ids {
        let result = client(&["--json", "containers", "create", "--container", id]);
        assert_eq!(result.code, 4, "id {id:?}: {}", result.stdout);
        assert_eq!(
            result.json()["error"],
            "icu.hoody.Snapd1.Error.InvalidArgument",
            "id {id:?}"
        );
        assert_eq!(result.json()["statusCode"], 400);
    }
    let in_pool = container_ids_in_pool();
    for id in ids {
        assert!(
            !in_pool.iter().any(|found| found == id),
            "zfs list shows container {id:?}"
        );
    }
}

#[test]
fn invalid_id_error_is_typed_on_bus() {
    let result = block_on(async {
        let (_connection, proxy) = proxy().await;
        proxy.create_container("a@b", "").await
    });

    match result {
        Err(Error::InvalidArgument(message)) => assert!(message.contains("a@b"), "{message}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn space_in_id_never_touches_neighbour() {
    let id = unique_id("a");
    let dataset = create_container(&id);
    create_snapshot(&id, "mine", 0);
    let spaced = format!("{id} b");
    let before = snapshot_names(&dataset);

    let result = client(&["--json", "snapshots", "create", "--container", &spaced]);
    assert_eq!(result.code, 4, "{}", result.stdout);
    let result = client(&[
        "--json",
        "snapshots",
        "delete",
        "--container",
        &spaced,
        "--name",
        "mine",
    ]);
    assert_eq!(result.code, 4, "{}", result.stdout);
    assert_eq!(snapshot_names(&dataset), before);
}

#[test]
fn control_characters_in_alias_are_rejected() {
    let id = unique_id("ctrl");
    let dataset = create_container(&id);
    let aliases = [
        "tab\there",
        "new\nline",
        "x\tlocal\npool/c1\ticu.hoody:expires\t0",
        "nul\u{1}",
        "sep\u{2028}x",
    ];
    for alias in aliases {
        let result = client(&[
            "--json",
            "snapshots",
            "create",
            "--container",
            &id,
            "--alias",
            alias,
        ]);
        assert_eq!(result.code, 4, "alias {alias:?}: {}", result.stdout);
        assert_eq!(
            result.json()["error"],
            "icu.hoody.Snapd1.Error.InvalidArgument"
        );
    }
    assert!(snapshot_names(&dataset).is_empty());
}

#[test]
fn four_byte_alias_is_stored_exactly() {
    let id = unique_id("emoji");
    let dataset = create_container(&id);
    let alias = "crab 🦀 and 𝄞 clef";
    let snapshot = create_snapshot(&id, alias, 0);
    let full = format!("{dataset}@{}", snapshot["name"].as_str().unwrap());

    assert_eq!(
        zfs_get("icu.hoody:alias", &full).as_bytes(),
        alias.as_bytes()
    );
    let listed = client_ok(&["snapshots", "list", "--container", &id]);
    assert_eq!(listed["data"][0]["alias"], alias);
}

#[test]
fn alias_length_counts_characters() {
    let id = unique_id("length");
    let dataset = create_container(&id);
    let hundred = "🦀".repeat(100);
    let snapshot = create_snapshot(&id, &hundred, 0);
    let full = format!("{dataset}@{}", snapshot["name"].as_str().unwrap());
    assert_eq!(zfs_get("icu.hoody:alias", &full), hundred);

    let hundred_one = "é".repeat(101);
    let result = client(&[
        "--json",
        "snapshots",
        "create",
        "--container",
        &id,
        "--alias",
        &hundred_one,
    ]);
    assert_eq!(result.code, 4, "{}", result.stdout);
    assert!(result.json()["message"]
        .as_str()
        .unwrap()
        .contains("101 characters"));
    assert_eq!(snapshot_names(&dataset).len(), 1);
}

#[test]
fn ascii_alias_of_100_is_accepted() {
    let id = unique_id("ascii100");
    create_container(&id);
    let alias = "a".repeat(100);
    let snapshot = create_snapshot(&id, &alias, 0);
    assert_eq!(snapshot["alias"], alias.as_str());
}

#[test]
fn alias_shaped_like_name_is_rejected() {
    let id = unique_id("shape");
    create_container(&id);
    let result = client(&[
        "--json",
        "snapshots",
        "create",
        "--container",
        &id,
        "--alias",
        "snap-20260101-000000",
    ]);
    assert_eq!(result.code, 4, "{}", result.stdout);
}

#[test]
fn expiry_above_maximum_is_rejected() {
    let id = unique_id("expiry");
    let dataset = create_container(&id);
    let result = client(&[
        "--json",
        "snapshots",
        "create",
        "--container",
        &id,
        "--expiry",
        "4000000000",
    ]);
    assert_eq!(result.code, 4, "{}", result.stdout);
    let result = client(&[
        "--json",
        "snapshots",
        "create",
        "--container",
        &id,
        "--expiry",
        "3651",
    ]);
    assert_eq!(result.code, 4, "{}", result.stdout);
    assert!(snapshot_names(&dataset).is_empty());
}

#[test]
fn megabyte_strings_are_rejected_and_daemon_answers() {
    let huge = "x".repeat(1 << 20);
    block_on(async {
        let (_connection, proxy) = proxy().await;
        let calls = [
            proxy.create_container(&huge, "").await.err(),
            proxy.create_snapshot(&huge, "", 0).await.err(),
            proxy.list_snapshots(&huge).await.err(),
            proxy.delete_snapshot("x", &huge).await.err(),
            proxy.set_alias("x", "y", &huge).await.err(),
        ];
        for error in calls {
            assert!(
                matches!(
                    error,
                    Some(Error::InvalidArgument(_)) | Some(Error::NotFound(_))
                ),
                "got {error:?}"
            );
        }
        assert!(
            proxy.list_containers().await.is_ok(),
            "daemon stopped answering"
        );
    });
}
