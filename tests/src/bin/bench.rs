//! Benchmark of hoody-snapd against the `zfs` command on the same pool, in the same run.
//!
//! `tests/bench.sh` runs it inside the test VM with a release build of the daemon. It prints
//! each figure with its ratio and writes RESULTS/benchmark.md (the table of the benchmark page)
//! and RESULTS/benchmark.json. Times are wall-clock milliseconds. Calls through D-Bus go over one
//! connection that stays open, as an agent or a deploy tool keeps it. The client process adds
//! its own start-up, which the page shows separately for listings.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::future::join_all;
use hoody_snapd_contract::ManagerProxy;
use hoody_snapd_tests::{block_on, container_root, proxy, zfs};
use zbus::zvariant::OwnedValue;

/// Containers that the fleet figures snapshot together.
const FLEET: usize = 100;
/// Rounds of one snapshot per fleet container, with the `zfs` command, that fill the pool.
const FILL_ROUNDS: usize = 95;
/// Rounds of expiring snapshots on the fleet: 5 x 100 = 500 for the expiry figure.
const EXPIRY_ROUNDS: usize = 5;
/// Snapshots of the container of the 200-snapshot listing.
const BIG: usize = 200;
/// Newer snapshots in the restore figure.
const NEWER: usize = 50;
/// Repetitions of each timed call whose median is reported.
const REPEAT: usize = 10;
/// User properties that the CLI side sets, like the daemon's: marker, time and alias.
const FIELDS: &str = "name,creation,used,referenced,userrefs,icu.hoody:alias,icu.hoody:created,\
icu.hoody:expires,icu.hoody:last-used,icu.hoody:managed,icu.hoody:group";

struct Figure {
    name: &'static str,
    target: &'static str,
    ours: String,
    cli: String,
    ratio: String,
    met: Option<bool>,
}

struct Bench {
    proxy: ManagerProxy<'static>,
    _connection: zbus::Connection,
    root: String,
    results: PathBuf,
    figures: Vec<Figure>,
    notes: Vec<String>,
}

fn main() {
    let results = PathBuf::from(std::env::args().nth(1).expect("usage: bench RESULTS_DIR"));
    block_on(async move {
        let (connection, proxy) = proxy().await;
        let mut bench = Bench {
            proxy,
            _connection: connection,
            root: container_root(),
            results,
            figures: Vec::new(),
            notes: Vec::new(),
        };
        bench.run().await;
        bench.write();
    });
}

fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn show(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// Runs the `zfs` command and returns how long it took; panics when it fails.
fn timed_zfs(args: &[&str]) -> f64 {
    let started = Instant::now();
    zfs(args);
    millis(started.elapsed())
}

fn cli_properties(alias: &str) -> Vec<String> {
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    [
        "icu.hoody:managed=true".to_string(),
        format!("icu.hoody:created={now}"),
        format!("icu.hoody:alias={alias}"),
    ]
    .into_iter()
    .flat_map(|property| ["-o".to_string(), property])
    .collect()
}

/// Takes one snapshot of each dataset with one `zfs snapshot` call, with extra properties.
fn snapshot_round(datasets: &[String], name: &str, extra: &[String]) -> f64 {
    let mut args: Vec<String> = vec!["snapshot".into()];
    args.extend(cli_properties(name));
    args.extend(extra.iter().cloned());
    args.extend(datasets.iter().map(|dataset| format!("{dataset}@{name}")));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    timed_zfs(&refs)
}

fn status_field(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// Reads the voluntary and involuntary context switches of each thread of a process, by
/// thread id.
fn context_switches(pid: &str) -> HashMap<String, u64> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return HashMap::new();
    };
    tasks
        .flatten()
        .map(|task| {
            let tid = task.file_name().to_string_lossy().into_owned();
            let path = format!("{pid}/task/{tid}");
            let switches = status_field(&path, "voluntary_ctxt_switches:")
                + status_field(&path, "nonvoluntary_ctxt_switches:");
            (tid, switches)
        })
        .collect()
}

impl Bench {
    fn dataset(&self, id: &str) -> String {
        format!("{}/{id}", self.root)
    }

    fn record(&mut self, figure: Figure) {
        println!(
            "bench: {}: ours {}, zfs {}, {} (target {}){}",
            figure.name,
            figure.ours,
            figure.cli,
            figure.ratio,
            figure.target,
            match figure.met {
                Some(true) => ", met",
                Some(false) => ", NOT met",
                None => "",
            }
        );
        self.figures.push(figure);
    }

    async fn create_containers(&self, ids: &[String]) {
        let calls = ids.iter().map(|id| {
            let proxy = self.proxy.clone();
            async move { proxy.create_container(id, "bench").await }
        });
        for (id, result) in ids.iter().zip(join_all(calls).await) {
            result.unwrap_or_else(|e| panic!("cannot create container {id}: {e}"));
        }
    }

    async fn create_snapshot(&self, id: &str, alias: &str, days: u32) -> f64 {
        let started = Instant::now();
        self.proxy
            .create_snapshot(id, alias, days)
            .await
            .unwrap_or_else(|e| panic!("cannot snapshot {id}: {e}"));
        millis(started.elapsed())
    }

    async fn list(&self, id: &str) -> (f64, usize) {
        let started = Instant::now();
        let listed = self
            .proxy
            .list_snapshots(id)
            .await
            .unwrap_or_else(|e| panic!("cannot list {id}: {e}"));
        (millis(started.elapsed()), listed.len())
    }

    async fn run(&mut self) {
        let fleet: Vec<String> = (0..FLEET).map(|n| format!("fleet-{n:03}")).collect();
        let fleet_datasets: Vec<String> = fleet.iter().map(|id| self.dataset(id)).collect();
        let restore_ids: Vec<String> = ["old-a", "old-b", "old-c", "new-a", "new-b", "new-c"]
            .iter()
            .map(|id| format!("restore-{id}"))
            .collect();
        let mut all = fleet.clone();
        all.extend(["big".to_string(), "small".to_string()]);
        all.extend(restore_ids.iter().cloned());
        let started = Instant::now();
        self.create_containers(&all).await;
        println!(
            "bench: created {} containers in {:.0} s",
            all.len(),
            started.elapsed().as_secs_f64()
        );

        self.single_create(&fleet_datasets).await;
        self.concurrent_creates(&fleet, &fleet_datasets).await;
        self.fill(&fleet_datasets, &restore_ids).await;
        self.expiry(&fleet_datasets).await;
        // Listings come from the index only for datasets whose last change is a few seconds
        // old, so the pool rests first.
        tokio::time::sleep(Duration::from_secs(3)).await;
        self.listing(
            "big",
            BIG,
            "list one container with 200 snapshots",
            "at least 20x faster",
        )
        .await;
        self.listing(
            "small",
            3,
            "list a container with 3 snapshots in a pool of 10,000",
            "at least 20x faster",
        )
        .await;
        self.restore(&restore_ids).await;
        self.idle().await;
    }

    /// One create through D-Bus against one `zfs snapshot -o ...`, alternating, on fleet
    /// containers that have no snapshot yet.
    async fn single_create(&mut self, fleet_datasets: &[String]) {
        let mut ours = Vec::new();
        let mut cli = Vec::new();
        for round in 0..REPEAT {
            let id = format!("fleet-{:03}", round);
            ours.push(self.create_snapshot(&id, &format!("one-{round}"), 0).await);
            let other = &fleet_datasets[REPEAT + round];
            cli.push(snapshot_round(
                std::slice::from_ref(other),
                &format!("one-{round}"),
                &[],
            ));
        }
        let (ours, cli) = (median(ours), median(cli));
        let ratio = ours / cli;
        self.record(Figure {
            name: "one create through D-Bus vs one `zfs snapshot -o ... ds@s`",
            target: "at most 0.9x the time",
            ours: show(ours),
            cli: show(cli),
            ratio: format!("{ratio:.2}x the time"),
            met: Some(ratio <= 0.9),
        });
    }

    /// 100 concurrent creates with distinct aliases against 100 serial `zfs snapshot` calls and
    /// against one call naming all 100.
    async fn concurrent_creates(&mut self, fleet: &[String], fleet_datasets: &[String]) {
        let started = Instant::now();
        let calls = fleet.iter().enumerate().map(|(number, id)| {
            let proxy = self.proxy.clone();
            async move {
                proxy
                    .create_snapshot(id, &format!("fleet-{number}"), 7)
                    .await
                    .unwrap_or_else(|e| panic!("cannot snapshot {id}: {e}"))
            }
        });
        let created = join_all(calls).await;
        let ours = millis(started.elapsed());
        let names: Vec<String> = fleet_datasets
            .iter()
            .zip(&created)
            .map(|(dataset, snapshot)| format!("{dataset}@{}", snapshot.name))
            .collect();
        let mut args = vec!["get", "-H", "-o", "value", "createtxg"];
        args.extend(names.iter().map(String::as_str));
        let groups: HashSet<String> = zfs(&args).lines().map(str::to_string).collect();

        let started = Instant::now();
        for (number, dataset) in fleet_datasets.iter().enumerate() {
            snapshot_round(
                std::slice::from_ref(dataset),
                &format!("serial-{number}"),
                &[],
            );
        }
        let serial = millis(started.elapsed());
        let one_call = snapshot_round(fleet_datasets, "one-call", &[]);

        let faster = serial / ours;
        self.record(Figure {
            name: "100 concurrent creates on 100 containers, distinct aliases, vs 100 serial `zfs snapshot`",
            target: "at least 15x faster",
            ours: show(ours),
            cli: show(serial),
            ratio: format!("{faster:.1}x faster"),
            met: Some(faster >= 15.0),
        });
        let slower = ours / one_call;
        self.record(Figure {
            name: "the same vs one `zfs snapshot` call naming all 100",
            target: "at most 1.5x the time",
            ours: show(ours),
            cli: show(one_call),
            ratio: format!("{slower:.2}x the time"),
            met: Some(slower <= 1.5),
        });
        self.notes.push(format!(
            "The 100 concurrent creates were committed in {} transaction groups.",
            groups.len()
        ));
    }

    /// Fills the pool with the `zfs` command: rounds of one snapshot per fleet container (and
    /// the containers of the listing and restore figures), with the daemon's marker.
    async fn fill(&mut self, fleet_datasets: &[String], restore_ids: &[String]) {
        let started = Instant::now();
        let big = self.dataset("big");
        let restore: Vec<String> = restore_ids.iter().map(|id| self.dataset(id)).collect();
        for round in 0..BIG {
            let mut datasets = vec![big.clone()];
            if round < FILL_ROUNDS {
                datasets.extend(fleet_datasets.iter().cloned());
            }
            for (position, dataset) in restore.iter().enumerate() {
                // The first three restore containers get NEWER + 1 snapshots, the others 2.
                let wanted = if position < 3 { NEWER + 1 } else { 2 };
                if round < wanted {
                    datasets.push(dataset.clone());
                }
            }
            snapshot_round(&datasets, &format!("fill-{round:03}"), &[]);
        }
        for number in 0..3 {
            self.create_snapshot("small", &format!("small-{number}"), 0)
                .await;
        }
        let total: usize = zfs(&[
            "list", "-H", "-t", "snapshot", "-o", "name", "-r", &self.root,
        ])
        .lines()
        .count();
        println!(
            "bench: pool filled to {total} snapshots in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        self.notes.push(format!(
            "The pool held {total} snapshots below the container root during the listing and \
             restore figures."
        ));
    }

    /// 500 expired snapshots deleted by the daemon's sweep against 500 serial `zfs destroy`.
    async fn expiry(&mut self, fleet_datasets: &[String]) {
        let expires = Utc::now() + chrono::Duration::seconds(40);
        let expires_text = expires.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        let extra = [
            "-o".to_string(),
            format!("icu.hoody:expires={expires_text}"),
        ];
        for round in 0..EXPIRY_ROUNDS {
            snapshot_round(fleet_datasets, &format!("expiring-{round}"), &extra);
            snapshot_round(fleet_datasets, &format!("plain-{round}"), &[]);
        }
        // A reload wakes the sweep, which then reads the snapshots made by hand and sleeps
        // until they expire.
        self.proxy.reload().await.expect("cannot reload the daemon");

        let log = PathBuf::from(std::env::var("HOODY_DAEMON_LOG").expect("HOODY_DAEMON_LOG"));
        let deadline = Instant::now() + Duration::from_secs(600);
        let swept = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let found = text.lines().rev().find(|line| {
                line.contains("expiry sweep finished")
                    && line.contains(&format!("deleted={}", EXPIRY_ROUNDS * FLEET))
            });
            if let Some(line) = found {
                break line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "the sweep did not delete the snapshots"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let ours: f64 = swept
            .split_whitespace()
            .find_map(|field| field.strip_prefix("duration_ms="))
            .and_then(|value| value.parse().ok())
            .expect("the sweep log line has no duration_ms");
        let left = zfs(&[
            "list", "-H", "-t", "snapshot", "-o", "name", "-r", &self.root,
        ])
        .lines()
        .filter(|name| name.contains("@expiring-"))
        .count();
        assert_eq!(left, 0, "expired snapshots are left");

        let started = Instant::now();
        for round in 0..EXPIRY_ROUNDS {
            for dataset in fleet_datasets {
                zfs(&["destroy", &format!("{dataset}@plain-{round}")]);
            }
        }
        let cli = millis(started.elapsed());
        let faster = cli / ours;
        self.record(Figure {
            name: "delete 500 expired snapshots vs 500 serial `zfs destroy`",
            target: "at least 10x faster",
            ours: show(ours),
            cli: show(cli),
            ratio: format!("{faster:.1}x faster"),
            met: Some(faster >= 10.0),
        });
        self.notes.push(
            "The expiry time is the daemon's own record of its sweep (`expiry sweep finished`, \
             `duration_ms`): reading every family through the index, reading the due snapshots \
             again, and destroying them."
                .into(),
        );
    }

    async fn listing(
        &mut self,
        id: &str,
        expected: usize,
        name: &'static str,
        target: &'static str,
    ) {
        let (cold, count) = self.list(id).await;
        assert_eq!(count, expected, "{id} lists {count} snapshots");
        let mut warm = Vec::new();
        for _ in 0..REPEAT {
            warm.push(self.list(id).await.0);
        }
        let ours = median(warm);
        let dataset = self.dataset(id);
        let cli = median(
            (0..3)
                .map(|_| {
                    timed_zfs(&[
                        "list", "-Hp", "-t", "snapshot", "-d", "1", "-o", FIELDS, &dataset,
                    ])
                })
                .collect(),
        );
        let client = median(
            (0..3)
                .map(|_| timed_client(&["snapshots", "list", "--container", id]))
                .collect(),
        );
        let faster = cli / ours;
        self.record(Figure {
            name,
            target,
            ours: format!(
                "{} (first call {}, client process {})",
                show(ours),
                show(cold),
                show(client)
            ),
            cli: show(cli),
            ratio: format!("{faster:.1}x faster"),
            met: Some(faster >= 20.0),
        });
    }

    /// Restores of a snapshot with 50 newer ones against restores of one with 1 newer one.
    async fn restore(&mut self, ids: &[String]) {
        let mut times = Vec::new();
        for id in ids {
            let options: HashMap<String, OwnedValue> =
                HashMap::from([("force".to_string(), OwnedValue::from(true))]);
            let started = Instant::now();
            self.proxy
                .restore_snapshot(id, "fill-000", options)
                .await
                .unwrap_or_else(|e| panic!("cannot restore {id}: {e}"));
            times.push(millis(started.elapsed()));
        }
        let many = median(times[..3].to_vec());
        let one = median(times[3..].to_vec());
        let ratio = many / one;
        self.record(Figure {
            name: "restore of a snapshot with 50 newer ones",
            target: "cost independent of the 50 (no per-snapshot work)",
            ours: format!("{} (with 1 newer: {})", show(many), show(one)),
            cli: "-".into(),
            ratio: format!("{ratio:.2}x the time of a restore with 1 newer"),
            met: Some(ratio <= 1.25),
        });
    }

    /// Counts the daemon's context switches while nothing calls it, and reads its memory.
    async fn idle(&mut self) {
        let pid = std::fs::read_to_string(std::env::var("HOODY_PID_FILE").expect("HOODY_PID_FILE"))
            .expect("cannot read the daemon's pid file")
            .trim()
            .to_string();
        let seconds = 60;
        let before = context_switches(&pid);
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let after = context_switches(&pid);
        // Threads that started or ended in the window count whole: idle threads of tokio's
        // blocking pool end after 10 s.
        let switches: u64 = after
            .iter()
            .map(|(tid, count)| count - before.get(tid).copied().unwrap_or(0).min(*count))
            .sum();
        let ended = before
            .keys()
            .filter(|tid| !after.contains_key(*tid))
            .count();
        let rss = status_field(&pid, "VmRSS:");
        let peak = status_field(&pid, "VmHWM:");
        self.record(Figure {
            name: "daemon idle",
            target: "no wake-ups beyond its timers; resident memory with 10,000 snapshots indexed reported",
            ours: format!(
                "{switches} context switches in {seconds} s ({} threads at the end, {ended} \
                 ended); resident {} MiB (peak {} MiB)",
                after.len(),
                rss / 1024,
                peak / 1024
            ),
            cli: "-".into(),
            ratio: "-".into(),
            met: None,
        });
    }

    fn write(&self) {
        let mut table = String::from(
            "| figure | target | hoody-snapd | `zfs` | ratio | met |\n|---|---|---|---|---|---|\n",
        );
        for figure in &self.figures {
            let met = match figure.met {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            };
            let _ = writeln!(
                table,
                "| {} | {} | {} | {} | {} | {met} |",
                figure.name, figure.target, figure.ours, figure.cli, figure.ratio
            );
        }
        table.push('\n');
        for note in &self.notes {
            let _ = writeln!(table, "- {note}");
        }
        std::fs::write(self.results.join("benchmark.md"), &table)
            .expect("cannot write benchmark.md");
        let json: Vec<serde_json::Value> = self
            .figures
            .iter()
            .map(|figure| {
                serde_json::json!({
                    "figure": figure.name, "target": figure.target, "ours": figure.ours,
                    "zfs": figure.cli, "ratio": figure.ratio, "met": figure.met,
                })
            })
            .collect();
        std::fs::write(
            self.results.join("benchmark.json"),
            serde_json::to_string_pretty(&json).unwrap(),
        )
        .expect("cannot write benchmark.json");
    }
}

/// Runs the client as a new process, as a shell script would, and returns how long it took.
fn timed_client(args: &[&str]) -> f64 {
    let client = std::env::var("HOODY_SNAP_BIN").expect("HOODY_SNAP_BIN");
    let started = Instant::now();
    let output = Command::new(client)
        .arg("--json")
        .args(args)
        .output()
        .expect("cannot run the client");
    assert!(output.status.success(), "client {args:?} failed");
    millis(started.elapsed())
}
