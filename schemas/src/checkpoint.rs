//! Metadata stored beside a checkpoint's tensors (SPEC §6): enough to resume exactly.

use crate::{JsonDocument, SCHEMA_VERSION};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointMeta {
    pub schema_version: u32,
    pub tool_version: String,
    /// Optimiser steps completed.
    pub step: u64,
    /// Model architecture (`ncsnv2`, `ncsnv2_deeper`, `ncsnv2_deepest`, `ncsn`).
    pub arch: String,
    /// The training config in effect, as JSON (the YAML file's content after overrides).
    pub config: serde_json::Value,
    pub data_cursor: DataCursor,
    /// Seed and position of every random stream the trainer draws from.
    pub rng: RngState,
    /// sha256 (hex) of the `.safetensors` file beside this metadata, as it was written; every
    /// load checks it. Absent in checkpoints written before it was recorded (loaded unchecked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensors_sha256: Option<String>,
}

/// Where the streaming loader stands, so a resumed run sees the same batches.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataCursor {
    pub epoch: u64,
    /// Rows already delivered to the trainer in this epoch.
    pub rows_consumed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RngState {
    pub seed: u64,
    /// Opaque serialised generator state(s), hex-encoded.
    pub state: String,
}

impl CheckpointMeta {
    pub fn new(step: u64, arch: &str, config: serde_json::Value) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            step,
            arch: arch.into(),
            config,
            data_cursor: DataCursor {
                epoch: 0,
                rows_consumed: 0,
            },
            rng: RngState {
                seed: 0,
                state: String::new(),
            },
            tensors_sha256: None,
        }
    }
}

impl JsonDocument for CheckpointMeta {
    const WHAT: &'static str = "ncsn checkpoint metadata";
    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

/// The file of a workdir that holds its [`TrainRun`].
pub const RUN_FILE: &str = "run.json";

/// `WORKDIR/run.json`: what a run trains on besides its config, written when it starts. The
/// loader's batches depend on the data's shards and on the shuffle buffer, so `--resume` must
/// find both unchanged to be exact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrainRun {
    pub schema_version: u32,
    /// `--data` as given when the run started (for messages).
    pub data: String,
    /// sha256 of the data's manifest (`_manifest.json`), which lists every shard's sha256: the same data
    /// whatever directory it was copied to.
    pub data_manifest_sha256: String,
    /// `--shuffle-buffer`, the loader's shuffle window in rows.
    pub shuffle_buffer: usize,
}

impl JsonDocument for TrainRun {
    const WHAT: &'static str = "ncsn training run record";
    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut m = CheckpointMeta::new(
            10,
            "ncsnv2",
            serde_json::json!({"training": {"batch_size": 8}}),
        );
        m.data_cursor = DataCursor {
            epoch: 2,
            rows_consumed: 80,
        };
        m.rng = RngState {
            seed: 7,
            state: "00ff".into(),
        };
        let text = serde_json::to_string(&m).unwrap();
        let back = CheckpointMeta::from_json_str(&text, std::path::Path::new("ckpt.json")).unwrap();
        assert_eq!(back, m);
    }
}
