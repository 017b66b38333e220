//! The ingest journal: how `--resume` knows what is done.
//!
//! While a run is in progress its output directory holds `_ingest-journal.json` (one per
//! partition): the run's header (the manifest minus its splits: dataset, input, recipe,
//! geometry and every byte-changing option) and the shards finished so far with their rejected
//! inputs. It is rewritten atomically after each shard is renamed into place, so after a
//! SIGKILL it lists exactly the complete shards; a shard renamed but not yet journaled is
//! simply written again, to the same bytes. When the run ends the manifest is written and the
//! journal removed, with the listing of the input it refers to (`inputs.rs`).

use std::path::Path;

use schemas::manifest::{Manifest, Rejected, ShardEntry, SplitManifest};

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Journal {
    /// The manifest this run will write, without splits: what a resumed run must agree with.
    pub header: Manifest,
    pub done: Vec<DoneShard>,
    /// sha256 of the input listing taken when the run started (`inputs.rs`); absent in the
    /// journals of an ncsn from before listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DoneShard {
    pub split: String,
    /// Shard index within the split; it covers source items `[index·R, (index+1)·R)`.
    pub index: u64,
    pub entry: ShardEntry,
    pub rejected: Vec<Rejected>,
}

impl Journal {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::format(path, format!("unreadable ingest journal: {e}")))
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).expect("journal serializes");
        schemas::write_atomic(path, &text)?;
        Ok(())
    }

    /// The manifest of the finished run: the header and, for each of `splits`, its done shards
    /// in index order with their rows and rejected inputs.
    pub fn into_manifest<'a>(self, splits: impl IntoIterator<Item = &'a str>) -> Manifest {
        let mut manifest = self.header;
        for split in splits {
            let mut sm = SplitManifest::default();
            let mut done: Vec<&DoneShard> = self.done.iter().filter(|d| d.split == split).collect();
            done.sort_by_key(|d| d.index);
            for d in done {
                sm.count += d.entry.rows;
                sm.shards.push(d.entry.clone());
                sm.rejected.extend(d.rejected.iter().cloned());
            }
            manifest.splits.insert(split.to_string(), sm);
        }
        manifest
    }
}

/// Errs naming the first field where `found` (on disk) and `want` (this run) disagree, so a
/// resume with different options is refused instead of mixing two runs' shards.
pub fn check_same_run(found: &Manifest, want: &Manifest, what: &Path) -> Result<()> {
    let a = serde_json::to_value(found).expect("manifest serializes");
    let b = serde_json::to_value(want).expect("manifest serializes");
    let mut diffs = Vec::new();
    diff("", &a, &b, &mut diffs);
    match diffs.first() {
        None => Ok(()),
        Some(d) => Err(Error::format(
            what,
            format!(
                "was started with different options ({d}); rerun with the same options, \
                 or write to a new --out"
            ),
        )),
    }
}

fn diff(at: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value::Object;
    match (a, b) {
        (Object(x), Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                if k == "splits" {
                    continue;
                }
                let null = serde_json::Value::Null;
                let name = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                diff(
                    &name,
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        _ if a != b => out.push(format!("`{at}` was {a}, now {b}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_option_is_named() {
        let mut a = Manifest::new("cifar10", "in", "identity(32)", 32, 32);
        a.options.insert("shard_rows".into(), "100".into());
        let mut b = a.clone();
        assert!(check_same_run(&a, &b, Path::new("j.json")).is_ok());
        b.options.insert("shard_rows".into(), "200".into());
        let err = check_same_run(&a, &b, Path::new("j.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("options.shard_rows") && err.contains("200"),
            "{err}"
        );
    }
}
