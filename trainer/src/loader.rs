//! Streaming loader (SPEC §6): shards in a seeded order, rows shuffled in a bounded buffer,
//! batches assembled on CPU threads and handed over as uint8, converted to float on the device.
//!
//! Two threads and two bounded channels:
//! ```text
//! reader: shard order (seed, epoch) → Parquet record batches ──chunks──▶
//! assembler: shuffle buffer → random flip → uint8 NHWC batch (pinned on CUDA) ──batches──▶ trainer
//! ```
//! Everything random is a function of (seed, epoch, position), so a [`DataCursor`] (epoch, rows
//! delivered) is enough to replay the exact same batches after a restart: the resumed loader
//! runs the epoch's shuffle again and skips the rows already delivered. Memory is bounded by
//! the shuffle buffer plus a few chunks and batches in flight, never by the dataset.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemas::checkpoint::DataCursor;
use shards::{Dataset, ShardReader, ShardRows};
use tch::{Device, Kind, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    #[error(transparent)]
    Pipeline(#[from] shards::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("the data loader thread stopped unexpectedly")]
    Disconnected,
    /// The host→device copy of a batch failed (torchrt's shim).
    #[error("copying a batch to the device: {0}")]
    Copy(#[from] torchrt::accel::AccelError),
}

pub type Result<T, E = LoaderError> = std::result::Result<T, E>;

/// How to stream a split.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    pub seed: u64,
    pub batch_size: usize,
    /// Rows held for shuffling; the memory bound (rows × H·W·C bytes).
    pub shuffle_buffer: usize,
    /// Batches assembled ahead of the trainer.
    pub prefetch: usize,
    /// Random horizontal flip (App. B.2), decided per row from (seed, epoch, position).
    pub random_flip: bool,
    /// Where batches go; on CUDA they are pinned so the copy can overlap compute.
    pub device: Device,
    /// This process's share of each batch in a data-parallel run ([`Shard::ALL`] otherwise).
    pub shard: Shard,
}

/// One rank's share of every batch: of the `batch_size` rows of a global batch, the rows
/// `rank`, `rank + world`, `rank + 2·world`, …. Every rank streams the same row sequence (same
/// seed, same cursor) and keeps its own rows, so the global batches, and with them the run, do
/// not depend on the number of ranks: a run checkpointed at 8 ranks resumes at 4 or at 1 with
/// the same data order (the cursor counts global rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub rank: usize,
    pub world: usize,
}

impl Shard {
    /// The whole batch: one process.
    pub const ALL: Shard = Shard { rank: 0, world: 1 };

    /// Whether row `i` of a global batch is this rank's.
    pub fn holds(&self, i: usize) -> bool {
        i % self.world == self.rank
    }

    /// How many of a `global`-row batch's rows are this rank's.
    pub fn rows_of(&self, global: usize) -> usize {
        (global + self.world - 1 - self.rank) / self.world
    }
}

/// One batch as the trainer receives it.
pub struct Batch {
    /// uint8 NHWC, on the target device once returned by [`Loader::next`]: this rank's rows
    /// of the global batch ([`Shard`]), in their order.
    pub pixels: Tensor,
    /// Rows in the global batch (`batch_size`, fewer at the end of an epoch), of which
    /// `pixels` holds `shard.rows_of(global_rows)`.
    pub global_rows: usize,
    /// Position of the stream after this batch: what a checkpoint stores.
    pub cursor: DataCursor,
}

impl Batch {
    /// Float NCHW in [0, 1], like torchvision's `ToTensor` (`u8 as f32 / 255`).
    pub fn to_float(&self) -> Tensor {
        pixels_to_float(&self.pixels)
    }
}

/// uint8 NHWC → float32 NCHW in [0, 1], on the tensor's own device.
pub fn pixels_to_float(pixels: &Tensor) -> Tensor {
    // Contiguous NCHW: the loss and the model view it as [B, -1].
    (pixels.permute([0, 3, 1, 2]).to_kind(Kind::Float) / 255.0).contiguous()
}

/// A running stream of batches over one split, epoch after epoch.
pub struct Loader {
    rx: Option<Receiver<Result<Batch>>>,
    /// The next batch, already on its way to the device (prefetch across the host→device copy).
    ahead: Option<Batch>,
    device: Device,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Time `next` spent blocked waiting for the assembler, in total.
    pub wait: Duration,
    /// Rows per epoch (the split's size).
    pub epoch_rows: u64,
}

/// A chunk of decoded rows, or the end of an epoch.
enum Chunk {
    Rows(ShardRows),
    EndOfEpoch,
}

impl Loader {
    /// Starts streaming `split` of `ds` at `cursor` (epoch 0, row 0 for a fresh run).
    pub fn start(ds: &Dataset, split: &str, cfg: LoaderConfig, cursor: DataCursor) -> Result<Self> {
        let entries = ds.split(split)?.shards.clone();
        let epoch_rows: u64 = entries.iter().map(|e| e.rows).sum();
        if epoch_rows == 0 {
            return Err(LoaderError::Invalid(format!(
                "{}: split `{split}` has no rows",
                ds.dir.display()
            )));
        }
        if cfg.batch_size == 0 || cfg.shuffle_buffer == 0 {
            return Err(LoaderError::Invalid(
                "batch size and shuffle buffer must be at least 1".into(),
            ));
        }
        if cfg.shard.rank >= cfg.shard.world {
            return Err(LoaderError::Invalid(format!(
                "rank {} of a world of {}",
                cfg.shard.rank, cfg.shard.world
            )));
        }
        if cursor.rows_consumed > epoch_rows {
            return Err(LoaderError::Invalid(format!(
                "data cursor says {} rows of epoch {} were consumed, but split `{split}` has {epoch_rows}",
                cursor.rows_consumed, cursor.epoch
            )));
        }
        let info = ds.info(split);
        let geometry = [info.height as i64, info.width as i64, info.channels as i64];
        let paths: Vec<_> = entries.iter().map(|e| ds.shard_path(e)).collect();
        let stop = Arc::new(AtomicBool::new(false));
        // Chunks of a few hundred rows keep the hand-over cheap and the memory small.
        let chunk_rows = cfg.shuffle_buffer.clamp(1, 256);
        let (chunk_tx, chunk_rx) = sync_channel::<Result<Chunk>>(2);
        let (batch_tx, batch_rx) = sync_channel::<Result<Batch>>(cfg.prefetch.max(1));

        let reader = {
            let (stop, seed, first_epoch) = (stop.clone(), cfg.seed, cursor.epoch);
            std::thread::Builder::new()
                .name("ncsn-loader-read".into())
                .spawn(move || read_epochs(&paths, seed, first_epoch, chunk_rows, &chunk_tx, &stop))
                .expect("spawn loader thread")
        };
        let assembler = {
            let stop = stop.clone();
            let cfg = cfg.clone();
            std::thread::Builder::new()
                .name("ncsn-loader-batch".into())
                .spawn(move || assemble(chunk_rx, batch_tx, cfg, geometry, cursor, &stop))
                .expect("spawn loader thread")
        };
        Ok(Self {
            rx: Some(batch_rx),
            ahead: None,
            device: cfg.device,
            stop,
            threads: vec![reader, assembler],
            wait: Duration::ZERO,
            epoch_rows,
        })
    }

    fn receive(&mut self) -> Result<Batch> {
        let t0 = Instant::now();
        let got = self.rx.as_ref().expect("receiver lives until drop").recv();
        self.wait += t0.elapsed();
        let mut b = got.map_err(|_| LoaderError::Disconnected)??;
        // From pinned memory on a side stream on CUDA: the copy overlaps the step in flight,
        // and the step that uses it waits for it on the GPU, not on the host.
        b.pixels = torchrt::accel::copy_on_side_stream(&b.pixels, self.device)?;
        Ok(b)
    }

    /// The next batch on the device. The one after it is requested at once, so its host→device
    /// copy runs while the caller computes.
    pub fn next_batch(&mut self) -> Result<Batch> {
        let current = match self.ahead.take() {
            Some(b) => b,
            None => self.receive()?,
        };
        if self.device != Device::Cpu {
            self.ahead = Some(self.receive()?);
        }
        Ok(current)
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Dropping the receiver unblocks a thread waiting to send; then they exit.
        self.rx.take();
        self.ahead.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

// A SplitMix64 step: decorrelates (seed, epoch, position) into one well-mixed word.
use schemas::rng::splitmix64 as mix;

/// The generator of one epoch's shuffle decisions (`purpose` separates independent streams).
fn epoch_rng(seed: u64, epoch: u64, purpose: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(mix(seed ^ mix(purpose)));
    r.set_stream(epoch);
    r
}

const SHARD_ORDER: u64 = 1;
const ROW_SHUFFLE: u64 = 2;
const FLIP: u64 = 3;

/// Whether row `position` of `epoch` is flipped.
fn flipped(seed: u64, epoch: u64, position: u64) -> bool {
    mix(mix(seed ^ mix(FLIP)) ^ mix(epoch) ^ position.rotate_left(17)) & 1 == 1
}

/// The shard order of an epoch: a seeded Fisher–Yates permutation.
pub fn shard_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut rng = epoch_rng(seed, epoch, SHARD_ORDER);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    order
}

fn read_epochs(
    paths: &[std::path::PathBuf],
    seed: u64,
    first_epoch: u64,
    chunk_rows: usize,
    tx: &SyncSender<Result<Chunk>>,
    stop: &AtomicBool,
) {
    for epoch in first_epoch.. {
        for i in shard_order(paths.len(), seed, epoch) {
            let batches = ShardReader::open(&paths[i]).and_then(|r| r.batches(chunk_rows, None));
            let batches = match batches {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx.send(Err(e.into()));
                    return;
                }
            };
            for rows in batches {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let failed = rows.is_err();
                if tx.send(rows.map(Chunk::Rows).map_err(Into::into)).is_err() || failed {
                    return;
                }
            }
        }
        if tx.send(Ok(Chunk::EndOfEpoch)).is_err() {
            return;
        }
    }
}

/// Rows go through a buffer of `shuffle_buffer` rows: once full, each incoming row replaces a
/// uniformly chosen one, which is emitted; at the end of an epoch the rest leaves in random
/// order. Emitted rows are flipped (maybe) and packed into batches; the epoch's last batch may
/// be smaller (like the authors' `DataLoader`, which does not drop it).
fn assemble(
    rx: Receiver<Result<Chunk>>,
    tx: SyncSender<Result<Batch>>,
    cfg: LoaderConfig,
    [h, w, c]: [i64; 3],
    start: DataCursor,
    stop: &AtomicBool,
) {
    let row_bytes = (h * w * c) as usize;
    let pin = cfg.device.is_cuda();
    let mut epoch = start.epoch;
    let mut skip = start.rows_consumed;
    let mut rng = epoch_rng(cfg.seed, epoch, ROW_SHUFFLE);
    let mut buffer: Vec<Vec<u8>> = Vec::with_capacity(cfg.shuffle_buffer);
    let shard = cfg.shard;
    let mut p = Packing {
        position: 0,
        pixels: Vec::with_capacity(shard.rows_of(cfg.batch_size) * row_bytes),
        in_batch: 0,
    };

    // Emits one row; returns false when the trainer has gone away.
    let emit = |row: &[u8], epoch: u64, skip: u64, p: &mut Packing, flush: bool| -> bool {
        if p.position >= skip {
            if !shard.holds(p.in_batch) {
                // Another rank's row: only counted.
            } else if cfg.random_flip && flipped(cfg.seed, epoch, p.position) {
                push_flipped(&mut p.pixels, row, w as usize, c as usize);
            } else {
                p.pixels.extend_from_slice(row);
            }
            p.in_batch += 1;
        }
        p.position += 1;
        let global_rows = p.in_batch;
        if global_rows == cfg.batch_size || (flush && global_rows > 0) {
            let n = p.pixels.len() / row_bytes;
            let t = Tensor::from_slice(p.pixels.as_slice()).view([n as i64, h, w, c]);
            let t = if pin { t.pin_memory(cfg.device) } else { t };
            p.pixels.clear();
            p.in_batch = 0;
            let b = Batch {
                pixels: t,
                global_rows,
                cursor: DataCursor {
                    epoch,
                    rows_consumed: p.position,
                },
            };
            return tx.send(Ok(b)).is_ok();
        }
        true
    };

    for chunk in rx {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match chunk {
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
            Ok(Chunk::Rows(rows)) => {
                for i in 0..rows.len() {
                    let row = rows.image(i);
                    if row.len() != row_bytes {
                        let _ = tx.send(Err(LoaderError::Invalid(format!(
                            "row id {} has {} pixel bytes, expected {row_bytes}",
                            rows.ids[i],
                            row.len()
                        ))));
                        return;
                    }
                    if buffer.len() < cfg.shuffle_buffer {
                        buffer.push(row.to_vec());
                        continue;
                    }
                    let j = rng.random_range(0..buffer.len());
                    let out = std::mem::replace(&mut buffer[j], row.to_vec());
                    if !emit(&out, epoch, skip, &mut p, false) {
                        return;
                    }
                }
            }
            Ok(Chunk::EndOfEpoch) => {
                while !buffer.is_empty() {
                    let j = rng.random_range(0..buffer.len());
                    let out = buffer.swap_remove(j);
                    let last = buffer.is_empty();
                    if !emit(&out, epoch, skip, &mut p, last) {
                        return;
                    }
                }
                epoch += 1;
                skip = 0;
                p.position = 0;
                rng = epoch_rng(cfg.seed, epoch, ROW_SHUFFLE);
            }
        }
    }
}

/// The batch being packed: this rank's rows so far and where the stream is.
struct Packing {
    /// Rows emitted in this epoch (kept or skipped by a resume).
    position: u64,
    /// This rank's rows of the batch, HWC bytes one after another.
    pixels: Vec<u8>,
    /// Rows of the global batch so far, this rank's or not.
    in_batch: usize,
}

/// Appends an HWC row mirrored left–right.
fn push_flipped(out: &mut Vec<u8>, row: &[u8], w: usize, c: usize) {
    for line in row.chunks_exact(w * c) {
        for px in line.chunks_exact(c).rev() {
            out.extend_from_slice(px);
        }
    }
}

/// The first `n` rows of a split as one uint8 NHWC tensor (a fixed held-out batch for the test
/// loss, paper App. C.5.1); `None` if the split is absent or empty.
pub fn first_rows(ds: &Dataset, split: &str, n: usize) -> Result<Option<Tensor>> {
    let Some(sm) = ds.manifest.splits.get(split) else {
        return Ok(None);
    };
    let info = ds.info(split);
    let mut pixels: Vec<u8> = Vec::with_capacity(n * info.pixel_bytes());
    let mut got = 0usize;
    'shards: for e in &sm.shards {
        for rows in ShardReader::open(&ds.shard_path(e))?.batches(n.clamp(1, 256), None)? {
            let rows = rows?;
            for i in 0..rows.len() {
                if got == n {
                    break 'shards;
                }
                pixels.extend_from_slice(rows.image(i));
                got += 1;
            }
        }
    }
    if got == 0 {
        return Ok(None);
    }
    Ok(Some(Tensor::from_slice(&pixels).view([
        got as i64,
        info.height as i64,
        info.width as i64,
        info.channels as i64,
    ])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_order_is_a_seeded_permutation() {
        let a = shard_order(10, 1, 0);
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..10).collect::<Vec<_>>());
        assert_eq!(a, shard_order(10, 1, 0));
        assert_ne!(a, shard_order(10, 1, 1), "each epoch has its own order");
        assert_ne!(a, shard_order(10, 2, 0), "the seed matters");
    }

    #[test]
    fn flip_mirrors_each_line() {
        // 2×2 image, 2 channels: [a b | c d] per line.
        let row = [1, 2, 3, 4, 5, 6, 7, 8];
        let mut out = vec![];
        push_flipped(&mut out, &row, 2, 2);
        assert_eq!(out, [3, 4, 1, 2, 7, 8, 5, 6]);
    }

    #[test]
    fn about_half_the_rows_flip() {
        let n = (0..10_000).filter(|&p| flipped(7, 3, p)).count();
        assert!((4_700..5_300).contains(&n), "{n}");
    }
}
