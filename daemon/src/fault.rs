//! Test-only fault points in multi-step operations.
//!
//! Built with the `fault-injection` feature, a daemon started with `HOODY_SNAPD_FAULT=<point>`
//! aborts when it reaches that point, as abruptly as a `kill -9`, so tests can check that the
//! next start recovers. Without the feature, `point` does nothing.

/// Aborts the process when the configured fault point is `name`.
pub fn point(name: &str) {
    #[cfg(feature = "fault-injection")]
    if std::env::var("HOODY_SNAPD_FAULT").as_deref() == Ok(name) {
        tracing::error!(point = name, "fault point reached, aborting");
        std::process::abort();
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = name;
}
