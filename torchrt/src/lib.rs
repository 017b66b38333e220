//! The libtorch runtime every stage shares: how `--device` is spelled ([`device`]) and what
//! `ncsn doctor` reports about the libtorch this build links ([`doctor`]).

pub mod device;
pub mod doctor;

pub use device::{parse_device, DeviceError};
