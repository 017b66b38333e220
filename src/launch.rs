//! How the front-end hands a subcommand that needs libtorch to `ncsn-torch`: by exec, so the
//! process, its pid, its signals (train's SIGINT/SIGTERM checkpoint) and its exit status are
//! the tensor binary's own, with nothing in between.

use std::ffi::{OsStr, OsString};
use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::CommandFactory;

use crate::cli::Cli;

/// The tensor binary, beside the front-end (`cargo build` and `cargo install` put both there).
pub const TENSOR_BINARY: &str = "ncsn-torch";

const ARGS_ID: &str = "ncsn-torch-args";

/// What `tensor!(...)` stands for in the front-end: the subcommand's arguments, unparsed.
/// `ncsn-torch` parses them, `--help` included.
#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub struct Passthrough {
    #[arg(id = ARGS_ID, num_args = 0.., trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    _args: Vec<OsString>,
}

/// The subcommand `argv` asks for, when `ncsn-torch` runs it: `ncsn [-q] NAME ...` or
/// `ncsn help NAME` (clap's own `help` would print the front-end's placeholder). Found before
/// clap parses anything, so the front-end never judges a tensor subcommand's flags.
pub fn tensor_subcommand(argv: &[OsString]) -> Option<String> {
    let mut words = argv
        .iter()
        .skip(1)
        .filter(|a| !matches!(a.to_str(), Some("-q" | "--quiet")));
    let mut name = words.next()?.to_str()?;
    if name == "help" {
        name = words.next()?.to_str()?;
    }
    let cli = Cli::command();
    let sub = cli.find_subcommand(name)?;
    let passed_on = sub.get_arguments().any(|a| a.get_id() == ARGS_ID);
    passed_on.then(|| sub.get_name().to_string())
}

/// Replaces this process with `ncsn-torch` and the same arguments; returns only on failure.
pub fn exec_tensor(argv: &[OsString], subcommand: &str) -> anyhow::Error {
    match prepare(argv, subcommand) {
        Ok(mut command) => anyhow!(command.exec()).context(format!("cannot run {TENSOR_BINARY}")),
        Err(err) => err,
    }
}

fn prepare(argv: &[OsString], subcommand: &str) -> anyhow::Result<std::process::Command> {
    let what = format!("`ncsn {subcommand}`");
    let exe = std::env::current_exe().context("cannot tell where this ncsn is")?;
    let exe_dir = exe.parent().unwrap_or(Path::new("/"));
    let tensor = exe_dir.join(TENSOR_BINARY);
    if !tensor.is_file() {
        bail!(
            "{what} runs {}, which is missing: `cargo build` and `cargo install --path .` \
             make both binaries (`cargo run` and `cargo build --bin ncsn` only ncsn)",
            tensor.display()
        );
    }
    warn_if_stale(&tensor);
    let found = crate::libtorch::find(exe_dir, &what).map_err(|e| anyhow!(e))?;
    let mut path = OsString::from(&found.dir);
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH").filter(|p| !p.is_empty()) {
        path.push(":");
        path.push(old);
    }
    let mut command = std::process::Command::new(&tensor);
    // Its usage lines then name the command the user typed (clap takes argv[0]'s file name).
    command
        .arg0(
            argv.first()
                .map(OsString::as_os_str)
                .unwrap_or(OsStr::new("ncsn")),
        )
        .args(argv.iter().skip(1))
        .env("LD_LIBRARY_PATH", path)
        .env(crate::cli::ENV_LIBTORCH_FOUND, &found.how);
    Ok(command)
}

/// In a cargo target directory, `ncsn-torch.d` lists every source file it was built from, as
/// cargo uses it: one newer than the binary means it is stale, as after editing and `cargo run`
/// (which builds only `ncsn`). Said on a terminal only, where that happens: a script or a test
/// runs what it built, even while someone edits the sources. An installed binary has no `.d`.
fn warn_if_stale(tensor: &Path) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    let Ok(dep_info) = std::fs::read_to_string(tensor.with_extension("d")) else {
        return;
    };
    let Ok(built) = std::fs::metadata(tensor).and_then(|m| m.modified()) else {
        return;
    };
    let stale = dep_info
        .lines()
        .next()
        .and_then(|l| l.split_once(": "))
        .map(|(_, deps)| dep_paths(deps))
        .unwrap_or_default()
        .into_iter()
        .find(|p| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .map_or(true, |t| t > built)
        });
    if let Some(source) = stale {
        eprintln!(
            "warning: {} is older than its source {}: `cargo run` and `cargo build --bin ncsn` \
             build only ncsn; `cargo build` (with your --release or --profile) rebuilds it",
            tensor.display(),
            source.display()
        );
    }
}

/// The paths of a make-style dependency list, where a space inside a name is `\ `.
fn dep_paths(deps: &str) -> Vec<PathBuf> {
    let mut paths = vec![];
    let mut current = String::new();
    let mut chars = deps.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => current.push(chars.next().unwrap()),
            ' ' if !current.is_empty() => paths.push(PathBuf::from(std::mem::take(&mut current))),
            ' ' => {}
            _ => current.push(c),
        }
    }
    paths.extend((!current.is_empty()).then(|| PathBuf::from(current)));
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn tensor_subcommands_are_told_apart_before_parsing() {
        let name = |w: &[&str]| tensor_subcommand(&argv(w));
        assert_eq!(
            name(&["ncsn", "train", "--bogus"]).as_deref(),
            Some("train")
        );
        assert_eq!(
            name(&["ncsn", "-q", "evaluate", "-h"]).as_deref(),
            Some("fid")
        );
        assert_eq!(name(&["ncsn", "help", "doctor"]).as_deref(), Some("doctor"));
        assert_eq!(name(&["ncsn", "inspect", "d"]), None);
        assert_eq!(name(&["ncsn", "help", "ingest"]), None);
        assert_eq!(name(&["ncsn", "--version"]), None);
        assert_eq!(name(&["ncsn"]), None);
        assert_eq!(name(&["ncsn", "frobnicate"]), None);
    }

    #[test]
    fn dependency_lists_keep_escaped_spaces() {
        assert_eq!(
            dep_paths("/a/b.rs /c\\ d/e.rs  /f.rs"),
            [
                PathBuf::from("/a/b.rs"),
                PathBuf::from("/c d/e.rs"),
                PathBuf::from("/f.rs")
            ]
        );
    }
}
