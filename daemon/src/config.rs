//! The daemon's configuration file, `/etc/hoody-snapd/config.toml`.
//!
//! Every key has a default, so an empty file is a valid configuration. Unknown keys are errors,
//! so a misspelt key is reported instead of silently ignored. `config/config.toml` in the
//! repository documents each key.

use std::path::Path;

use serde::Deserialize;

use crate::names::MAX_EXPIRY_DAYS;

/// Path of the configuration file when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/hoody-snapd/config.toml";

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub zfs: ZfsConfig,
    #[serde(default)]
    pub snapshots: SnapshotConfig,
    #[serde(default)]
    pub restore: RestoreConfig,
    #[serde(default)]
    pub expiry: ExpiryConfig,
    #[serde(default)]
    pub log: LogConfig,
}

/// The `[zfs]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ZfsConfig {
    /// Filesystem under which each container is a child filesystem.
    pub root: String,
    /// Filesystem, never mounted, under which the daemon keeps superseded timelines, deleted
    /// containers that still have snapshots, and datasets of operations in progress.
    pub internal_root: String,
    /// Whether the daemon creates `root` and `internal_root` (and missing parents) at start.
    pub create_root: bool,
}

impl Default for ZfsConfig {
    fn default() -> Self {
        ZfsConfig {
            root: "tank/hoody/containers".into(),
            internal_root: "tank/hoody/internal".into(),
            create_root: true,
        }
    }
}

/// The `[expiry]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ExpiryConfig {
    /// Maximum time, in seconds, that the expiry task sleeps between sweeps, even when the
    /// next expiry is later.
    pub max_sleep_seconds: u32,
    /// Seconds before a snapshot that could not be deleted is tried again.
    pub retry_seconds: u32,
}

impl Default for ExpiryConfig {
    fn default() -> Self {
        ExpiryConfig {
            max_sleep_seconds: 3600,
            retry_seconds: 300,
        }
    }
}

/// The `[restore]` table.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RestoreConfig {
    /// Command run before a restore, as program and arguments, without a shell. `{container}`,
    /// `{dataset}` and `{mountpoint}` in an argument are replaced. Empty means none.
    pub pre_hook: Vec<String>,
    /// Command run after a restore, even a failed one, with the same replacements.
    pub post_hook: Vec<String>,
    /// Seconds a hook may run before it is killed and counted as failed; 0 means the default
    /// of 60.
    pub hook_timeout_seconds: u32,
}

/// The `[snapshots]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotConfig {
    /// Largest expiry, in days, that a create request may ask for.
    pub max_expiry_days: u32,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            max_expiry_days: 3650,
        }
    }
}

/// Destination of log records.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    /// The journal when systemd started the daemon with its output connected to the journal,
    /// standard error otherwise.
    #[default]
    Auto,
    /// The journal, with structured fields.
    Journal,
    /// Standard error, as readable text.
    Stderr,
}

/// The `[log]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter directive, for example `info` or `hoody_snapd=debug`.
    pub level: String,
    pub target: LogTarget,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            target: LogTarget::Auto,
        }
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Invalid { path: String, message: String },
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: shown,
            message,
        })
    }

    /// Parses and checks configuration text.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|error| error.to_string())?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        check_root("zfs.root", &self.zfs.root)?;
        check_root("zfs.internal_root", &self.zfs.internal_root)?;
        check_roots_apart(&self.zfs.root, &self.zfs.internal_root)?;
        for (key, value) in [
            ("expiry.max_sleep_seconds", self.expiry.max_sleep_seconds),
            ("expiry.retry_seconds", self.expiry.retry_seconds),
        ] {
            if !(1..=86_400).contains(&value) {
                return Err(format!("{key} is {value}; it must be between 1 and 86400"));
            }
        }
        for (key, hook) in [
            ("restore.pre_hook", &self.restore.pre_hook),
            ("restore.post_hook", &self.restore.post_hook),
        ] {
            if hook
                .first()
                .is_some_and(|program| !program.starts_with('/'))
            {
                return Err(format!(
                    "{key} must start with an absolute program path, not \"{}\"",
                    hook[0]
                ));
            }
        }
        let days = self.snapshots.max_expiry_days;
        if days == 0 || days > MAX_EXPIRY_DAYS {
            return Err(format!(
                "snapshots.max_expiry_days is {days}; it must be between 1 and {MAX_EXPIRY_DAYS}"
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level).map_err(|error| {
            format!(
                "log.level \"{}\" is not a valid filter: {error}",
                self.log.level
            )
        })?;
        Ok(())
    }
}

/// Checks a root filesystem setting: a filesystem name of plain components, short enough to leave
/// room for container ids.
///
/// Components follow `valid_char()` in OpenZFS `module/zcommon/zfs_namecheck.c`, without the
/// space, which the daemon does not allow in its own names.
fn check_root(key: &str, root: &str) -> Result<(), String> {
    const MAX_ROOT_LEN: usize = 128;
    if root.is_empty() {
        return Err(format!(
            "{key} is empty; set it to a filesystem such as tank/hoody/containers"
        ));
    }
    if root.len() > MAX_ROOT_LEN {
        return Err(format!(
            "{key} is {} bytes long; the maximum is {MAX_ROOT_LEN}, so that container ids fit in \
             ZFS's 255-byte names",
            root.len()
        ));
    }
    for component in root.split('/') {
        let valid = !component.is_empty()
            && component
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
            && component != "."
            && component != "..";
        if !valid {
            return Err(format!(
                "{key} \"{}\" has an invalid component \"{}\"; components may contain only \
                 ASCII letters, digits, '-', '_', '.' and ':'",
                root.escape_debug(),
                component.escape_debug()
            ));
        }
    }
    Ok(())
}

/// Checks that the two roots are in the same pool, because ZFS renames only within a pool, and
/// that neither contains the other, so timelines never show up as containers.
fn check_roots_apart(root: &str, internal: &str) -> Result<(), String> {
    let pool = |name: &str| name.split('/').next().unwrap_or("").to_string();
    if pool(root) != pool(internal) {
        return Err(format!(
            "zfs.internal_root {internal} is not in the pool of zfs.root {root}; both must be in one pool"
        ));
    }
    let inside =
        |outer: &str, inner: &str| inner == outer || inner.starts_with(&format!("{outer}/"));
    if inside(root, internal) || inside(internal, root) {
        return Err(format!(
            "zfs.root {root} and zfs.internal_root {internal} must not contain each other"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn shipped_default_file_parses() {
        let text = include_str!("../../config/config.toml");
        let config = Config::parse(text).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn unknown_key_is_rejected() {
        let error = Config::parse("[zfs]\nrooot = \"tank/x\"\n").unwrap_err();
        assert!(error.contains("rooot"), "{error}");
    }

    #[test]
    fn root_with_snapshot_separator_is_rejected() {
        let error = Config::parse("[zfs]\nroot = \"tank/x@y\"\n").unwrap_err();
        assert!(error.contains("invalid component"), "{error}");
    }

    #[test]
    fn root_with_empty_component_is_rejected() {
        assert!(Config::parse("[zfs]\nroot = \"tank//x\"\n").is_err());
        assert!(Config::parse("[zfs]\nroot = \"/tank\"\n").is_err());
    }

    #[test]
    fn expiry_bound_is_checked() {
        assert!(Config::parse("[snapshots]\nmax_expiry_days = 0\n").is_err());
        assert!(Config::parse("[snapshots]\nmax_expiry_days = 36501\n").is_err());
        assert!(Config::parse("[snapshots]\nmax_expiry_days = 30\n").is_ok());
    }

    #[test]
    fn internal_root_must_be_apart() {
        assert!(Config::parse("[zfs]\nroot = \"tank/c\"\ninternal_root = \"tank/c/i\"\n").is_err());
        assert!(Config::parse("[zfs]\nroot = \"tank/c\"\ninternal_root = \"other/i\"\n").is_err());
        assert!(Config::parse("[zfs]\nroot = \"tank/c\"\ninternal_root = \"tank/i\"\n").is_ok());
    }

    #[test]
    fn hook_needs_absolute_program() {
        assert!(Config::parse("[restore]\npre_hook = [\"systemctl\", \"stop\"]\n").is_err());
        assert!(Config::parse("[restore]\npre_hook = [\"/bin/true\"]\n").is_ok());
    }

    #[test]
    fn bad_log_level_is_rejected() {
        assert!(Config::parse("[log]\nlevel = \"=[\"\n").is_err());
    }

    #[test]
    fn log_target_names() {
        let config = Config::parse("[log]\ntarget = \"journal\"\n").unwrap();
        assert_eq!(config.log.target, LogTarget::Journal);
        assert!(Config::parse("[log]\ntarget = \"syslog\"\n").is_err());
    }
}
