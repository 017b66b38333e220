//! NCSNv2 training and sampling on tch.
pub mod checkpoint;
pub mod data_transform;
pub mod ema;
pub mod interpolate;
pub mod langevin;
pub mod loader;
pub mod loss;
pub mod metrics;
pub mod models;
pub mod optim;
pub mod plot;
pub mod sample;
pub mod tensorboard;
pub mod train;
