//! Test-only fault points in multi-step operations, and a test clock.
//!
//! Built with the `fault-injection` feature, a daemon started with `HOODY_SNAPD_FAULT=<point>`
//! aborts when it reaches that point, as abruptly as a `kill -9`, so tests can check that the
//! next start recovers. With `HOODY_SNAPD_CLOCK_FILE=<path>`, its clock is the real time plus
//! the number of seconds in that file, read at each use, so tests move time by days without
//! waiting. Without the feature, neither exists.

use chrono::{DateTime, Utc};

/// Returns the test clock when the feature is built in and `HOODY_SNAPD_CLOCK_FILE` is set.
pub fn test_clock() -> Option<std::sync::Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>> {
    #[cfg(feature = "fault-injection")]
    if let Some(path) = std::env::var_os("HOODY_SNAPD_CLOCK_FILE") {
        tracing::warn!(path = ?path, "using the test clock");
        // A file caught in the middle of a rewrite reads as empty, so the last offset that
        // parsed is kept until the next one does.
        let last = std::sync::atomic::AtomicI64::new(0);
        return Some(std::sync::Arc::new(move || {
            let read = std::fs::read_to_string(&path)
                .ok()
                .and_then(|text| text.trim().parse::<i64>().ok());
            let offset = match read {
                Some(offset) => {
                    last.store(offset, std::sync::atomic::Ordering::Relaxed);
                    offset
                }
                None => last.load(std::sync::atomic::Ordering::Relaxed),
            };
            Utc::now() + chrono::Duration::seconds(offset)
        }));
    }
    None
}

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
