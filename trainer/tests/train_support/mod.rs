//! The training tests' tiny config; their datasets come from `testkit::datasets`.
#![allow(dead_code)]

use std::path::Path;

use schemas::config::Config;

pub use testkit::datasets::id_dataset as write_dataset;

/// A small NCSNv2 (ngf 4, 8×8, 5 noise levels) that trains in milliseconds per step on CPU.
pub fn tiny_config(batch: usize, n_iters: u64, snapshot_freq: u64) -> Config {
    let text = format!(
        r#"
training: {{batch_size: {batch}, n_iters: {n_iters}, snapshot_freq: {snapshot_freq}, snapshot_sampling: false}}
sampling: {{batch_size: 4, step_lr: 0.00001, n_steps_each: 2}}
data: {{dataset: "TEST", image_size: 8, channels: 3, random_flip: true}}
model: {{sigma_begin: 10, num_classes: 5, sigma_end: 0.01, normalization: InstanceNorm++, nonlinearity: elu, ngf: 4}}
optim: {{optimizer: Adam, lr: 0.001, eps: 0.00000001}}
"#
    );
    Config::from_yaml_str(&text, Path::new("tiny.yml")).unwrap()
}
