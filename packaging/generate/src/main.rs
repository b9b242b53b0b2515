//! Generates the man pages and shell completions of `hoody-snapd` and `hoody-snap` from their
//! clap definitions, so that they always match the binaries. `packaging/build-deb.sh` runs it,
//! and nothing it writes is committed.
//!
//! Each command gets a page of its own, as clap_mangen names them (`hoody-snap-snapshots-restore.1`).
//! The top page of each binary adds the handwritten sections of `packaging/man/*.roff`, and the
//! configuration file's page, `hoody-snapd.toml.5`, is copied as written.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use clap_complete::Shell;
use clap_mangen::Man;
use roff::{bold, roman, Roff};

// The module has only clap definitions. The client code that reads their fields is not part of
// this binary, so the compiler would report those fields as never read.
#[allow(dead_code)]
#[path = "../../../client/src/cli.rs"]
mod client_cli;

/// Sections of hoody-snapd(8) after the generated options and commands.
const DAEMON_SECTIONS: &str = include_str!("../../man/hoody-snapd.8.roff");
/// Sections of hoody-snap(1) after the generated options, commands and exit status.
const CLIENT_SECTIONS: &str = include_str!("../../man/hoody-snap.1.roff");
/// The page of the configuration file, written by hand.
const CONFIG_PAGE: &str = include_str!("../../man/hoody-snapd.toml.5");
const CONFIG_PAGE_NAME: &str = "hoody-snapd.toml.5";

/// Generates the man pages and shell completions of hoody-snapd and hoody-snap.
#[derive(Parser)]
struct Args {
    /// Directory to write into. The pages go to `man/`, the completions to
    /// `completions/{bash,zsh,fish}/`.
    out_dir: PathBuf,
}

/// A binary whose pages and completions are generated.
struct Binary {
    command: clap::Command,
    /// Man page section: 1 for user commands, 8 for daemons.
    section: &'static str,
    /// Handwritten roff text appended to the top page.
    sections: &'static str,
    /// Exit codes as `  N  meaning` lines, rendered as the EXIT STATUS section when present.
    exit_codes: Option<&'static str>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match generate(&args.out_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!(
                "hoody-snapd-generate: cannot write into {}: {error}",
                args.out_dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

fn binaries() -> [Binary; 2] {
    [
        Binary {
            command: hoody_snapd::cli::Args::command(),
            section: "8",
            sections: DAEMON_SECTIONS,
            exit_codes: None,
        },
        Binary {
            command: client_cli::Cli::command(),
            section: "1",
            sections: CLIENT_SECTIONS,
            exit_codes: Some(client_cli::EXIT_CODES),
        },
    ]
}

fn generate(out_dir: &Path) -> io::Result<()> {
    let man_dir = out_dir.join("man");
    fs::create_dir_all(&man_dir)?;
    for binary in binaries() {
        write_pages(&binary, &man_dir)?;
        write_completions(binary.command, out_dir)?;
    }
    fs::write(man_dir.join(CONFIG_PAGE_NAME), CONFIG_PAGE)?;
    Ok(())
}

/// Writes the top page of a binary and one page for each of its commands, at any depth.
fn write_pages(binary: &Binary, man_dir: &Path) -> io::Result<()> {
    // As clap_mangen::generate_to does: no `help` command, and build() sets the display names
    // (`hoody-snap-snapshots`) that the pages and their cross-references use.
    let mut command = binary.command.clone().disable_help_subcommand(true);
    command.build();
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_command_pages(sub.clone(), binary.section, man_dir)?;
    }

    let man = with_metadata(Man::new(command.clone()), binary.section);
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    if let Some(exit_codes) = binary.exit_codes {
        page.write_all(exit_status_section(exit_codes).as_bytes())?;
    }
    page.write_all(binary.sections.as_bytes())?;
    man.render_version_section(&mut page)?;
    fs::write(man_dir.join(man.get_filename()), page)
}

fn write_command_pages(command: clap::Command, section: &str, man_dir: &Path) -> io::Result<()> {
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_command_pages(sub.clone(), section, man_dir)?;
    }
    with_metadata(Man::new(command), section).generate_to(man_dir)?;
    Ok(())
}

fn with_metadata(man: Man, section: &str) -> Man {
    let source = format!("hoody-snapd {}", env!("CARGO_PKG_VERSION"));
    man.section(section).source(source).manual("hoody-snapd")
}

/// Renders `  N  meaning` lines as an EXIT STATUS section with one tagged paragraph per code.
fn exit_status_section(exit_codes: &str) -> String {
    let mut roff = Roff::default();
    roff.control("SH", ["EXIT STATUS"]);
    for line in exit_codes
        .lines()
        .skip_while(|line| !line.starts_with("  "))
    {
        let Some((code, meaning)) = line.trim().split_once(char::is_whitespace) else {
            continue;
        };
        roff.control("TP", []);
        roff.text([bold(code)]);
        roff.text([roman(meaning.trim())]);
    }
    roff.to_roff()
}

/// Writes the bash, zsh and fish completions of a binary under `completions/<shell>/`.
fn write_completions(mut command: clap::Command, out_dir: &Path) -> io::Result<()> {
    let name = command.get_name().to_string();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let dir = out_dir.join("completions").join(shell.to_string());
        fs::create_dir_all(&dir)?;
        clap_complete::generate_to(shell, &mut command, &name, &dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_lists_every_code() {
        let section = exit_status_section(client_cli::EXIT_CODES);
        for code in 0..=9 {
            assert!(
                section.contains(&format!("\\fB{code}\\fR")),
                "code {code} missing from:\n{section}"
            );
        }
        assert!(!section.contains("Exit codes"), "{section}");
    }

    #[test]
    fn client_about_matches_cargo_description() {
        let manifest: toml::Table =
            toml::from_str(include_str!("../../../client/Cargo.toml")).unwrap();
        let description = manifest["package"]["description"].as_str().unwrap();
        let command = client_cli::Cli::command();
        assert_eq!(
            command.get_name(),
            manifest["package"]["name"].as_str().unwrap()
        );
        assert_eq!(command.get_about().unwrap().to_string(), description);
    }

    #[test]
    fn pages_cover_every_command() {
        let dir = std::env::temp_dir().join(format!("hoody-snapd-generate-{}", std::process::id()));
        generate(&dir).unwrap();
        let man_dir = dir.join("man");
        for name in [
            "hoody-snapd.8",
            "hoody-snapd-check-config.8",
            "hoody-snap.1",
            "hoody-snap-snapshots.1",
            "hoody-snap-snapshots-restore.1",
            "hoody-snap-containers-copy.1",
            "hoody-snap-jobs-show.1",
            "hoody-snap-reload.1",
            CONFIG_PAGE_NAME,
        ] {
            assert!(man_dir.join(name).is_file(), "{name} not generated");
        }
        assert!(!man_dir.join("hoody-snap-help.1").exists());
        let restore = fs::read_to_string(man_dir.join("hoody-snap-snapshots-restore.1")).unwrap();
        assert!(restore.contains("save\\-before"), "{restore}");
        let completion = fs::read_to_string(dir.join("completions/bash/hoody-snap.bash")).unwrap();
        assert!(completion.contains("save-before"), "{completion}");
        assert!(dir.join("completions/zsh/_hoody-snapd").is_file());
        assert!(dir.join("completions/fish/hoody-snap.fish").is_file());
        fs::remove_dir_all(&dir).unwrap();
    }
}
