//! Log output: structured journal records under systemd, readable text on standard error
//! otherwise.
//!
//! Levels: `info` for lifecycle events and every change to the pool, `warn` for a failure the
//! daemon survives (a ZFS call that failed, a denied call), `error` for failures that stop the
//! daemon, `debug` for reads and internals. Span and event fields (container, snapshot,
//! operation, duration_ms) become journal fields of the same name in upper case (CONTAINER,
//! SNAPSHOT, OPERATION, DURATION_MS).

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogConfig, LogTarget};

/// Installs the global subscriber. `RUST_LOG` overrides the configured level.
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));

    let use_journal = match config.target {
        LogTarget::Journal => true,
        LogTarget::Stderr => false,
        // systemd sets JOURNAL_STREAM when standard output or error is connected to the journal.
        LogTarget::Auto => std::env::var_os("JOURNAL_STREAM").is_some(),
    };

    let journal = if use_journal {
        match tracing_journald::layer() {
            // Without a prefix, a field such as `container` becomes CONTAINER, not F_CONTAINER,
            // so `journalctl CONTAINER=web-1` works. A field named like a standard journal field
            // (systemd.journal-fields(7): `message`, `priority`, `code_file`...) would add a
            // second value to that field, so the daemon's fields avoid those names.
            Ok(layer) => Some(
                layer
                    .with_field_prefix(None)
                    .with_syslog_identifier("hoody-snapd".into()),
            ),
            Err(error) => {
                eprintln!("hoody-snapd: cannot connect to the journal, logging to stderr: {error}");
                None
            }
        }
    } else {
        None
    };
    let stderr = journal.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .boxed()
    });

    tracing_subscriber::registry()
        .with(filter)
        .with(journal)
        .with(stderr)
        .init();
}
