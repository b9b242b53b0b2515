//! The command line of the `hoody-snapd` binary, as clap definitions.
//!
//! They are in the library, not in `main.rs`, so that the generator of man pages and shell
//! completions (`packaging/generate`) builds the same `clap::Command` as the daemon.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config;

/// Daemon that keeps ZFS snapshots of containers, controlled over the D-Bus system bus.
#[derive(Parser)]
#[command(version, about)]
pub struct Args {
    /// Configuration file.
    #[arg(long, short, value_name = "PATH", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Check a configuration file and exit: 0 when it is valid, 1 with a message when not.
    CheckConfig {
        /// File to check; defaults to the --config path.
        path: Option<PathBuf>,
    },
    /// Print the D-Bus introspection XML of the manager interface and exit.
    Introspect,
}
