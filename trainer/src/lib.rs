//! NCSNv2 training and sampling on tch.
pub mod checkpoint;
pub mod doctor;
pub mod models;
