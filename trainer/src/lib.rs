//! NCSNv2 training and sampling on tch.
pub mod checkpoint;
pub mod doctor;
pub mod interpolate;
pub mod langevin;
pub mod loss;
pub mod models;
pub mod sample;
