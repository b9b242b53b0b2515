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

/// A method of the shipped interface with the D-Bus types of its input arguments.
struct MethodShape {
    name: String,
    inputs: Vec<String>,
}

/// Reads the methods and their input types from the shipped introspection XML.
fn methods() -> Vec<MethodShape> {
    let xml = hoody_snapd_contract::INTROSPECTION_XML;
    let mut methods: Vec<MethodShape> = Vec::new();
    for line in xml.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("<method name=\"") {
            let name = rest.split('"').next().unwrap().to_string();
            methods.push(MethodShape {
                name,
                inputs: Vec::new(),
            });
        } else if line.starts_with("<arg ") && line.contains("direction=\"in\"") {
            let kind = line
                .split("type=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            methods.last_mut().unwrap().inputs.push(kind.to_string());
        }
    }
    assert!(methods.len() > 15, "too few methods read from the XML");
    methods
}

/// Builds an argument of D-Bus type `kind` from one string (and its length for numbers).
fn argument(kind: &str, text: &str) -> zbus::zvariant::Value<'static> {
    use zbus::zvariant::Value;
    match kind {
        "s" => Value::from(text.to_string()),
        "u" => Value::from(u32::try_from(text.len()).unwrap_or(u32::MAX)),
        "as" => Value::from(vec![text.to_string()]),
        "a{sv}" => {
            let mut options = std::collections::HashMap::new();
            options.insert(text.to_string(), Value::from(text.to_string()));
            Value::from(options)
        }
        other => panic!("no argument builder for type {other}"),
    }
}

/// Sends a method call with an arbitrary body (none for `None`) and returns the D-Bus error
/// name, or `None` when the call succeeded.
async fn send(
    connection: &zbus::Connection,
    method: &str,
    body: Option<zbus::zvariant::Structure<'_>>,
) -> Option<String> {
    let (destination, path, interface) = (
        Some(hoody_snapd_contract::BUS_NAME),
        "/icu/hoody/Snapd1",
        Some("icu.hoody.Snapd1.Manager"),
    );
    let reply = match &body {
        Some(body) => {
            connection
                .call_method(destination, path, interface, method, body)
                .await
        }
        None => {
            connection
                .call_method(destination, path, interface, method, &())
                .await
        }
    };
    match reply {
        Ok(_) => None,
        Err(zbus::Error::MethodError(name, _, _)) => Some(name.to_string()),
        Err(other) => panic!("{method}: no D-Bus error reply but {other}"),
    }
}

#[test]
fn every_method_survives_malformed_calls() {
    use zbus::zvariant::{StructureBuilder, Value};

    let huge = "x".repeat(1 << 20);
    let unknown = unique_id("never-created");
    let texts = ["", huge.as_str(), unknown.as_str(), "😀\n\t@%#/"];
    block_on(async {
        let (connection, proxy) = proxy().await;
        for method in methods() {
            // Wrong types: a number where the first argument is not one, a string otherwise;
            // no arguments at all; and one argument too many.
            let wrong = if method.inputs.first().map(String::as_str) == Some("u") {
                Value::from("seven")
            } else {
                Value::from(7u32)
            };
            let mut bodies = vec![(
                "wrong type",
                Some(StructureBuilder::new().append_field(wrong)),
            )];
            if !method.inputs.is_empty() {
                bodies.push(("no arguments", None));
            }
            let mut extra = StructureBuilder::new();
            for kind in &method.inputs {
                extra = extra.append_field(argument(kind, "x"));
            }
            bodies.push((
                "extra argument",
                Some(extra.append_field(Value::from(1u32))),
            ));
            // zbus rejects a body that does not match the signature before the daemon's code
            // runs, with its own error name.
            for (what, builder) in bodies {
                let body = builder.map(|builder| builder.build().unwrap());
                let error = send(&connection, &method.name, body).await;
                assert!(
                    matches!(
                        error.as_deref(),
                        Some(
                            "org.freedesktop.zbus.Error" | "org.freedesktop.DBus.Error.InvalidArgs"
                        )
                    ),
                    "{} with {what} gave {error:?}",
                    method.name
                );
            }

            // Right types with hostile values: each gets a typed error reply, never an
            // internal failure.
            if method.inputs.is_empty() {
                continue;
            }
            for text in texts {
                let mut builder = StructureBuilder::new();
                for kind in &method.inputs {
                    builder = builder.append_field(argument(kind, text));
                }
                let error = send(&connection, &method.name, Some(builder.build().unwrap())).await;
                let shown: String = text.chars().take(20).collect();
                if let Some(name) = &error {
                    assert!(
                        name.starts_with("icu.hoody.Snapd1.Error.") && !name.ends_with(".Failed"),
                        "{}({shown:?}...) gave {name}",
                        method.name
                    );
                }
                if text.len() == huge.len() && method.inputs.iter().any(|kind| kind != "u") {
                    assert_eq!(
                        error.as_deref(),
                        Some("icu.hoody.Snapd1.Error.InvalidArgument"),
                        "{} with a 1 MB string",
                        method.name
                    );
                }
                assert!(
                    proxy.list_containers().await.is_ok(),
                    "daemon stopped answering after {}({shown:?}...)",
                    method.name
                );
            }
        }
    });
    assert!(
        dataset_of(&unknown).is_none() || {
            // CreateContainer and CopyContainer may make a container of a valid unknown id.
            client_ok(&["containers", "delete", "--container", &unknown]);
            true
        }
    );
    assert!(
        half_made_datasets().is_empty(),
        "{:?}",
        half_made_datasets()
    );
}
