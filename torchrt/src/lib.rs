//! The libtorch runtime every stage shares: how `--device` is spelled ([`device`]), what
//! `ncsn doctor` reports about the libtorch this build links ([`doctor`]), and the switches
//! tch lacks for full speed on a GPU ([`accel`]) and the collectives of data-parallel training
//! from libtorch's c10d ([`dist`]), and the one kernel of ours, the CRP blocks' max-pool
//! ([`pool`]): the three modules over C++ shims.

pub mod accel;
pub mod device;
pub mod dist;
pub mod doctor;
pub mod pool;

pub use device::{parse_device, DeviceError};
