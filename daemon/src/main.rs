//! hoody-snapd: a system daemon that owns the ZFS snapshots of containers and serves them on
//! the D-Bus system bus as `icu.hoody.Snapd1`.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use futures_util::StreamExt;
use hoody_snapd_contract::{Manager, BUS_NAME, INTROSPECTION_XML, OBJECT_PATH};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_tokio::Signals;

use hoody_snapd::cli::{Args, Command};
use hoody_snapd::config::Config;
use hoody_snapd::service::{self, Service};
use hoody_snapd::{containers, fault, logging, names, recovery, zfs};

fn main() -> ExitCode {
    let args = Args::parse();
    match args.command {
        Some(Command::CheckConfig { path }) => check_config(&path.unwrap_or(args.config)),
        Some(Command::Introspect) => {
            print!("{INTROSPECTION_XML}");
            ExitCode::SUCCESS
        }
        None => run_daemon(&args.config),
    }
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match Config::load(path) {
        Ok(_) => {
            println!("{}: valid", path.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("hoody-snapd: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_daemon(config_path: &std::path::Path) -> ExitCode {
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("hoody-snapd: {error}");
            return ExitCode::FAILURE;
        }
    };
    logging::init(&config.log);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, config_path.to_path_buf())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Opens ZFS, takes the bus name, and serves calls until SIGTERM or SIGINT.
async fn serve(config: Config, config_path: std::path::PathBuf) -> Result<(), String> {
    let zfs = zfs::Zfs::open()
        .map_err(|error| format!("cannot open ZFS: {error}; is the zfs module loaded?"))?;
    let (userland, kernel) = zfs.versions();
    tracing::info!(version = env!("CARGO_PKG_VERSION"), zfs_userland = %userland, zfs_kernel = %kernel,
        root = %config.zfs.root, "starting hoody-snapd");
    let layout = names::Layout {
        root: config.zfs.root.clone(),
        internal: config.zfs.internal_root.clone(),
    };
    containers::ensure_roots(&zfs, &layout, config.zfs.create_root)?;
    recovery::recover(&zfs, &layout, chrono::Utc::now());

    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|error| format!("cannot install signal handlers: {error}"))?;
    let clock: service::Clock = fault::test_clock().unwrap_or_else(|| Arc::new(chrono::Utc::now));
    let service = Service::new(zfs, config, config_path, layout, clock);
    let connection = zbus::connection::Builder::system()
        .and_then(|builder| builder.serve_at(OBJECT_PATH, Manager::new(service.clone())))
        .map_err(|error| format!("cannot set up the D-Bus connection: {error}"))?
        .build()
        .await
        .map_err(|error| format!("cannot connect to the system bus: {error}"))?;
    let emitter = zbus::object_server::SignalEmitter::new(&connection, OBJECT_PATH)
        .map_err(|error| format!("cannot create the signal emitter: {error}"))?;
    service.set_emitter(emitter.into_owned());
    service.set_connection(connection.clone()).await;
    // The name comes last, so that no call arrives before the service can check callers.
    connection.request_name(BUS_NAME).await.map_err(|error| {
        format!("cannot take the bus name {BUS_NAME}: {error}; is another hoody-snapd running, and is the D-Bus policy installed?")
    })?;
    service.start_expiry();
    tracing::info!(
        bus_name = BUS_NAME,
        object_path = OBJECT_PATH,
        "listening on the system bus"
    );
    notify_systemd(&[sd_notify::NotifyState::Ready]);

    while let Some(signal) = signals.next().await {
        match signal {
            SIGHUP => {
                let service = service.clone();
                let result = tokio::task::spawn_blocking(move || service.reload_config()).await;
                if let Ok(Err(error)) = result {
                    tracing::warn!(error = %error.message(), "configuration not reloaded");
                }
            }
            _ => {
                tracing::info!(signal, "shutting down");
                break;
            }
        }
    }

    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    if let Err(error) = connection.release_name(BUS_NAME).await {
        tracing::warn!(%error, "cannot release the bus name");
    }
    service.shut_down().await;
    tracing::info!("stopped; all operations finished");
    Ok(())
}

fn notify_systemd(states: &[sd_notify::NotifyState]) {
    if let Err(error) = sd_notify::notify(false, states) {
        tracing::debug!(%error, "cannot notify systemd");
    }
}
