//! NCSNv2 training and sampling on tch, and the FID of what it trains.
pub mod checkpoint;
pub mod data_transform;
pub mod ema;
pub mod fid;
pub mod interpolate;
pub mod langevin;
pub mod loader;
pub mod loss;
pub mod metrics;
pub mod models;
pub mod optim;
pub mod plot;
pub mod sample;
pub mod speed;
pub mod tensorboard;
pub mod train;
