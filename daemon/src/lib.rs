//! The modules of hoody-snapd. The binary (`main.rs`) runs them as the daemon. They are a
//! library as well, so that the fuzz targets in `fuzz/` can call the validators and parsers.

pub mod access;
pub mod busy;
pub mod cli;
pub mod commit;
pub mod config;
pub mod containers;
pub mod copy;
pub mod expiry;
pub mod family;
pub mod fault;
pub mod fuzzing;
pub mod index;
pub mod journal;
pub mod logging;
pub mod names;
pub mod properties;
pub mod recovery;
pub mod restore;
pub mod service;
pub mod snapshots;
pub mod status;
pub mod zfs;
