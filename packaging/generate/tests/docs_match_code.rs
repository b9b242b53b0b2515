//! Checks the handwritten docs against the code they describe: every key of the shipped
//! configuration file is documented, and every D-Bus method has a `busctl` example whose
//! signature matches the introspection data.

use std::collections::BTreeMap;

const CONFIG: &str = include_str!("../../../config/config.toml");
const CONFIG_DOC: &str = include_str!("../../../docs/configuration.md");
const CONFIG_PAGE: &str = include_str!("../../man/hoody-snapd.toml.5");
const API_DOC: &str = include_str!("../../../docs/dbus-api.md");
const INTROSPECTION: &str = include_str!("../../../config/dbus/icu.hoody.Snapd1.Manager.xml");

/// What each documented call has between `busctl --system` (and its options) and the method.
const CALL_PREFIX: &str = "call icu.hoody.Snapd1 /icu/hoody/Snapd1 icu.hoody.Snapd1.Manager ";

/// Returns `table.key` for every key of the shipped configuration file.
fn config_keys() -> Vec<(String, String)> {
    let config: toml::Table = toml::from_str(CONFIG).unwrap();
    let mut keys = Vec::new();
    for (table, values) in &config {
        for key in values.as_table().unwrap().keys() {
            keys.push((table.clone(), key.clone()));
        }
    }
    keys
}

/// Returns the text of the man page section `THE [table] TABLE`.
fn page_section(table: &str) -> &'static str {
    let heading = format!(".SH \"THE [{table}] TABLE\"");
    let start = CONFIG_PAGE
        .find(&heading)
        .unwrap_or_else(|| panic!("hoody-snapd.toml.5 has no section {heading}"));
    let rest = &CONFIG_PAGE[start + heading.len()..];
    &rest[..rest.find(".SH ").unwrap_or(rest.len())]
}

/// Returns each method of the introspection data with the signature of its input arguments.
fn method_signatures() -> BTreeMap<String, String> {
    let mut methods = BTreeMap::new();
    for block in INTROSPECTION.split("<method name=\"").skip(1) {
        let (name, rest) = block.split_once('"').unwrap();
        let body = &rest[..rest.find("</method>").unwrap()];
        let signature: String = body
            .lines()
            .filter(|line| line.contains("direction=\"in\""))
            .map(|line| attribute(line, "type"))
            .collect();
        methods.insert(name.to_string(), signature);
    }
    methods
}

/// Returns the value of the XML attribute `name` on a line of the introspection data.
fn attribute<'a>(line: &'a str, name: &str) -> &'a str {
    let start = line.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    let value = &line[start..];
    &value[..value.find('"').unwrap()]
}

/// Returns the first word after the method name in each `busctl call` of the API doc, or an
/// empty string when the call has no arguments.
fn documented_signatures() -> BTreeMap<String, Vec<String>> {
    let mut calls: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in API_DOC.lines() {
        let Some(start) = line.find(CALL_PREFIX) else {
            continue;
        };
        assert!(
            line.starts_with("busctl --system "),
            "call in docs/dbus-api.md does not start with `busctl --system`: {line}"
        );
        let mut words = line[start + CALL_PREFIX.len()..].split_whitespace();
        let method = words.next().unwrap().to_string();
        let signature = words.next().unwrap_or("").trim_matches('\'').to_string();
        calls.entry(method).or_default().push(signature);
    }
    calls
}

#[test]
fn config_keys_in_reference() {
    for (table, key) in config_keys() {
        let name = format!("`{table}.{key}`");
        assert!(
            CONFIG_DOC.contains(&name),
            "docs/configuration.md lacks {name}"
        );
    }
}

#[test]
fn config_keys_in_man_page() {
    for (table, key) in config_keys() {
        let section = page_section(&table);
        let entry = format!(".BR {key} ");
        assert!(
            section.contains(&entry),
            "hoody-snapd.toml.5 section [{table}] lacks {entry}"
        );
    }
}

#[test]
fn every_method_has_example() {
    let documented = documented_signatures();
    for (method, signature) in method_signatures() {
        let examples = documented
            .get(&method)
            .unwrap_or_else(|| panic!("docs/dbus-api.md has no busctl call of {method}"));
        for example in examples {
            assert_eq!(
                example, &signature,
                "busctl call of {method} in docs/dbus-api.md has the wrong signature"
            );
        }
    }
}

#[test]
fn examples_name_real_methods() {
    let methods = method_signatures();
    for method in documented_signatures().keys() {
        assert!(
            methods.contains_key(method),
            "docs/dbus-api.md calls {method}, which the interface does not have"
        );
    }
}
