//! What a run did, as the closing paragraph of `ncsn ingest`.

use std::path::PathBuf;
use std::time::Duration;

use schemas::manifest::Manifest;

/// What a run did, for the closing paragraph.
#[derive(Debug, Clone)]
pub struct Summary {
    pub out: PathBuf,
    pub manifest: Manifest,
    /// Source items decoded by this run (not counting shards a resumed run found done).
    pub processed: u64,
    pub resumed_shards: usize,
    pub elapsed: Duration,
    pub workers: usize,
    pub writers: usize,
    pub already_complete: bool,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.manifest;
        if self.already_complete {
            return write!(
                f,
                "{}: already complete, nothing to do.",
                self.out.display()
            );
        }
        let splits: Vec<String> = m
            .splits
            .iter()
            .map(|(name, s)| {
                format!(
                    "{name} {} images in {} shard{}",
                    s.count,
                    s.shards.len(),
                    if s.shards.len() == 1 { "" } else { "s" }
                )
            })
            .collect();
        let rejected: usize = m.splits.values().map(|s| s.rejected.len()).sum();
        let secs = self.elapsed.as_secs_f64();
        write!(
            f,
            "{} {}x{} ({}) -> {}: {}; {rejected} rejected{}. Decoded {} images in {secs:.1} s \
             ({:.0} img/s, {} workers, {} writer{}){}.",
            m.dataset,
            m.height,
            m.width,
            m.recipe,
            self.out.display(),
            splits.join(", "),
            if rejected > 0 {
                " (listed with reasons in the manifest)"
            } else {
                ""
            },
            self.processed,
            self.processed as f64 / secs.max(1e-9),
            self.workers,
            self.writers,
            if self.writers == 1 { "" } else { "s" },
            if self.resumed_shards > 0 {
                format!("; {} shards were already done", self.resumed_shards)
            } else {
                String::new()
            },
        )?;
        if let Some(p) = m.partition {
            write!(
                f,
                " This is partition {}/{}: once all {} are done, run `ncsn ingest merge {}`.",
                p.index,
                p.count,
                p.count,
                self.out.display()
            )?;
        }
        Ok(())
    }
}
