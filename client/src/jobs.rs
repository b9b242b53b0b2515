//! Waiting for a background job, with a progress bar on a terminal.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use futures_util::StreamExt;
use hoody_snapd_contract::{
    Error, JobFinishedStream, JobProgressStream, ManagerProxy, JOB_FAILED, JOB_SUCCEEDED,
};

use crate::output::Failure;

/// How often the client asks for the job's state, in case a signal was lost.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Signal subscriptions made before the job starts, so no signal of it can be missed.
pub struct Waiter {
    finished: JobFinishedStream,
    progress: JobProgressStream,
}

impl Waiter {
    pub async fn subscribe(proxy: &ManagerProxy<'_>) -> Result<Waiter, Error> {
        Ok(Waiter {
            finished: proxy.receive_job_finished().await?,
            progress: proxy.receive_job_progress().await?,
        })
    }

    /// Waits until the job finishes, drawing progress on standard error when it is a terminal.
    pub async fn wait(mut self, proxy: &ManagerProxy<'_>, job: u32) -> Result<(), Failure> {
        let draw = std::io::stderr().is_terminal();
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        let outcome = loop {
            tokio::select! {
                Some(signal) = self.finished.next() => {
                    let Ok(args) = signal.args() else { continue };
                    if args.job == job {
                        break finished(args.success, args.error(), args.message());
                    }
                }
                Some(signal) = self.progress.next() => {
                    if let Ok(args) = signal.args() {
                        if args.job == job && draw {
                            draw_bar(args.done, args.total);
                        }
                    }
                }
                _ = poll.tick() => {
                    let info = proxy.get_job(job).await.map_err(Failure::from_error)?;
                    if info.state == JOB_SUCCEEDED || info.state == JOB_FAILED {
                        let error = info.error.unwrap_or_default();
                        break finished(info.state == JOB_SUCCEEDED, &error, info.message.as_deref().unwrap_or(""));
                    }
                }
            }
        };
        if draw {
            eprintln!();
        }
        outcome
    }
}

fn finished(success: bool, error: &str, message: &str) -> Result<(), Failure> {
    if success {
        return Ok(());
    }
    Err(Failure::from_name(error, message))
}

fn draw_bar(done: u64, total: u64) {
    const WIDTH: u64 = 30;
    let filled = (done.min(total) * WIDTH).checked_div(total).unwrap_or(0);
    let bar: String = (0..WIDTH)
        .map(|i| if i < filled { '#' } else { '.' })
        .collect();
    let percent = (done.min(total) * 100).checked_div(total).unwrap_or(0);
    eprint!(
        "\r[{bar}] {percent:>3}% {} of {}",
        crate::output::human_size(done),
        crate::output::human_size(total)
    );
    let _ = std::io::stderr().flush();
}
