//! The input a run started from, so that `--resume` refuses an input that changed.
//!
//! Shard `s` is a pure function of the input, so a resume over a changed input (files deleted,
//! added or replaced between the kill and the resume) would mix two inputs' rows: duplicates
//! and gaps under a manifest that verifies. So a run lists, when it starts, every file its
//! items are read from ([`Source::inputs`]) with its size and mtime into `_ingest-inputs.tsv`
//! beside the journal, once (CelebA's listing is 200 000 lines, too large for the journal that
//! is rewritten after every shard), and the journal records that file's sha256. A resume lists
//! the input again and compares; the end of the run removes the file with the journal.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::UNIX_EPOCH;

use crate::sources::Source;
use crate::{Error, Result};

/// Shown in a refusal; the rest are counted.
const NAMED_CHANGES: usize = 3;

/// Lists the source's input files into `path`; returns the listing's sha256 for the journal.
pub(super) fn record(source: &Source, path: &Path) -> Result<String> {
    schemas::write_atomic(path, listing(source).as_bytes())?;
    Ok(shards::sha256_file(path)?.0)
}

/// Errs, naming what changed, unless the source's input files are the ones listed in `path`
/// (whose sha256 the journal recorded as `sha256`) when the interrupted run started.
pub(super) fn check(source: &Source, path: &Path, sha256: &str) -> Result<()> {
    let unknown = |why: &str| {
        Error::format(
            path,
            format!(
                "{why}, so whether the input changed since the interrupted run cannot be told; \
                 ingest again into a new --out"
            ),
        )
    };
    if !path.is_file() {
        return Err(unknown("missing"));
    }
    if shards::sha256_file(path)?.0 != sha256 {
        return Err(unknown("not the listing the journal recorded"));
    }
    let before = std::fs::read_to_string(path).map_err(Error::io(path))?;
    let now = listing(source);
    if before == now {
        return Ok(());
    }
    let changes = changes(&parse(&before), &parse(&now));
    let mut named = changes[..changes.len().min(NAMED_CHANGES)].join(", ");
    if changes.len() > NAMED_CHANGES {
        named.push_str(&format!(" (and {} more)", changes.len() - NAMED_CHANGES));
    }
    Err(Error::format(
        &source.input,
        format!(
            "the input changed since the interrupted run started ({}): {named}; resume from \
             the same input, or ingest again into a new --out",
            path.display()
        ),
    ))
}

/// Size and mtime (ns since the epoch) of a file; `None` when it cannot be read.
type Stat = Option<(u64, u128)>;

/// One line per input file, in the source's order: `name<TAB>size<TAB>mtime_ns`, `-` for both
/// when the file is missing. Names are relative to the source's input, tabs and newlines
/// escaped.
fn listing(source: &Source) -> String {
    let root = Path::new(&source.input);
    let mut text = String::new();
    for p in &source.inputs {
        let name = match p.strip_prefix(root) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
            _ => p.display().to_string(),
        };
        let stat: Stat = std::fs::metadata(p).ok().map(|m| {
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok());
            (m.len(), mtime.map_or(0, |d| d.as_nanos()))
        });
        text.push_str(&escape(&name));
        match stat {
            Some((size, mtime)) => text.push_str(&format!("\t{size}\t{mtime}\n")),
            None => text.push_str("\t-\t-\n"),
        }
    }
    text
}

fn escape(name: &str) -> String {
    name.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
}

/// The listing as name → stat (unparseable lines are skipped; only the messages use this).
fn parse(text: &str) -> BTreeMap<&str, Stat> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.rsplitn(3, '\t');
            let (mtime, size, name) = (f.next()?, f.next()?, f.next()?);
            Some((name, size.parse().ok().zip(mtime.parse().ok())))
        })
        .collect()
}

/// What differs between two listings, in name order: `x removed`, `x added`, `x size a→b`,
/// `x modified`.
fn changes(before: &BTreeMap<&str, Stat>, now: &BTreeMap<&str, Stat>) -> Vec<String> {
    let mut names: Vec<&str> = before.keys().chain(now.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let (a, b) = (
            before.get(name).copied().flatten(),
            now.get(name).copied().flatten(),
        );
        match (a, b) {
            (Some(_), None) => out.push(format!("{name} removed")),
            (None, Some(_)) => out.push(format!("{name} added")),
            (Some((sa, _)), Some((sb, _))) if sa != sb => {
                out.push(format!("{name} size {sa}→{sb}"))
            }
            (Some((_, ta)), Some((_, tb))) if ta != tb => out.push(format!("{name} modified")),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(dir: &Path, files: &[&str]) -> Source {
        crate::sources::Source::encoded(
            "folder",
            dir,
            8,
            crate::transforms::Recipe::Identity,
            Vec::new(),
        )
        .with_inputs(files.iter().map(|f| dir.join(f)))
    }

    #[test]
    fn a_changed_input_is_refused_naming_the_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("in");
        std::fs::create_dir(&dir).unwrap();
        let names = ["a.png", "b\tc.png", "d.png", "e.png", "f.png"];
        for n in names {
            std::fs::write(dir.join(n), b"1234").unwrap();
        }
        let tsv = tmp.path().join("ingest-inputs.tsv");
        let sha = record(&source(&dir, &names), &tsv).unwrap();
        check(&source(&dir, &names), &tsv, &sha).unwrap();

        std::fs::remove_file(dir.join("a.png")).unwrap();
        std::fs::write(dir.join("b\tc.png"), b"12").unwrap();
        let err = check(&source(&dir, &names), &tsv, &sha)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a.png removed, b\\tc.png size 4→2") && !err.contains("more"),
            "{err}"
        );
        // Five changes: the first three named, the rest counted.
        let err = check(&source(&dir, &["x.png"]), &tsv, &sha)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a.png removed, b\\tc.png removed, d.png removed (and 2 more)"),
            "{err}"
        );

        let err = check(&source(&dir, &names), &tsv, "0000")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not the listing the journal recorded"),
            "{err}"
        );
    }
}
