//! The image type every stage hands around: decoders and transforms produce it, grids and
//! PNG files consume it.

/// An RGB uint8 image, HWC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb8 {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}
