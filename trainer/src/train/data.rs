//! The run's data: the shards checked against the config, the training stream, and the fixed
//! held-out batch of the test loss (App. C.5.1).

use schemas::checkpoint::DataCursor;
use schemas::config::Config;
use shards::Dataset;
use tch::{Device, Tensor};

use super::{Result, TrainError, TrainOptions};
use crate::loader::{self, Loader, LoaderConfig, Shard};

/// The shards must have the geometry the config trains on.
pub fn check_data(cfg: &Config, ds: &Dataset) -> Result<()> {
    let m = &ds.manifest;
    let s = cfg.data.image_size;
    if m.height != s || m.width != s || m.channels != cfg.data.channels {
        return Err(TrainError::Config(format!(
            "{}: the shards are {}×{}×{} but the config's data.image_size/channels ask for \
             {s}×{s}×{} (ingest with --resolution {s}, or fix the config)",
            ds.dir.display(),
            m.height,
            m.width,
            m.channels,
            cfg.data.channels
        )));
    }
    ds.split("train")?;
    Ok(())
}

/// The `train` split from `cursor` on: shuffled, flipped (`data.random_flip`), in batches of
/// `training.batch_size`, of which this process gets its `shard`'s rows.
pub(super) fn train_stream(
    cfg: &Config,
    opts: &TrainOptions,
    ds: &Dataset,
    cursor: DataCursor,
    shard: Shard,
) -> Result<Loader> {
    let config = LoaderConfig {
        seed: opts.seed,
        batch_size: cfg.training.batch_size,
        shuffle_buffer: opts.shuffle_buffer,
        prefetch: opts.prefetch,
        random_flip: cfg.data.random_flip,
        device: opts.device,
        shard,
    };
    Ok(Loader::start(ds, "train", config, cursor)?)
}

/// Rows of the held-out batch: `test.batch_size`, at most `training.batch_size`.
pub(super) fn test_rows(cfg: &Config) -> usize {
    let batch = cfg.training.batch_size;
    cfg.test.as_ref().map_or(batch, |t| t.batch_size.min(batch))
}

/// The first [`test_rows`] images of the `test` split as floats in [0, 1] on `device`, if the
/// data has a test split.
pub(super) fn test_batch(cfg: &Config, ds: &Dataset, device: Device) -> Result<Option<Tensor>> {
    Ok(loader::first_rows(ds, "test", test_rows(cfg))?
        .map(|t| loader::pixels_to_float(&t.to_device(device))))
}

/// Passes over the data completed at `cursor` (the epoch's last batch completes it).
pub(super) fn epochs_done(cursor: &DataCursor, epoch_rows: u64) -> u64 {
    cursor.epoch + u64::from(cursor.rows_consumed >= epoch_rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_is_done_with_its_last_row() {
        let at = |epoch, rows_consumed| DataCursor {
            epoch,
            rows_consumed,
        };
        assert_eq!(epochs_done(&at(0, 0), 10), 0);
        assert_eq!(epochs_done(&at(0, 9), 10), 0);
        assert_eq!(epochs_done(&at(0, 10), 10), 1);
        assert_eq!(epochs_done(&at(1, 4), 10), 1);
    }
}
