//! CIFAR-10's distributed layout (SPEC §3), written once for the reader (`pipeline`), the
//! procedural demo set (`ncsn synth`) and the test fixtures (`testkit`).
//!
//! A batch holds records of [`RECORD_BYTES`]: one label byte, then the 32×32 image as three
//! planes, all red bytes, then all green, then all blue, each row-major (CHW). The python
//! version pickles the same planes. Shards store pixels HWC (R, G, B per pixel).

/// Image side.
pub const SIDE: usize = 32;
/// Bytes of one colour plane.
pub const PLANE_BYTES: usize = SIDE * SIDE;
/// Pixel bytes of one image (three planes, or HWC).
pub const PIXEL_BYTES: usize = 3 * PLANE_BYTES;
/// Bytes of one binary-version record: the label and the three planes.
pub const RECORD_BYTES: usize = 1 + PIXEL_BYTES;

/// The train split's batch files, in order (the binary version adds `.bin`).
pub const TRAIN_BATCHES: [&str; 5] = [
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
];
/// The test split's batch files.
pub const TEST_BATCHES: [&str; 1] = ["test_batch"];

/// One image's R, G, B planes ([`PIXEL_BYTES`]) as HWC pixels.
pub fn chw_to_hwc(planes: &[u8]) -> Vec<u8> {
    assert_eq!(
        planes.len(),
        PIXEL_BYTES,
        "a CIFAR image is 3 planes of 32×32"
    );
    let mut out = vec![0u8; PIXEL_BYTES];
    for p in 0..PLANE_BYTES {
        for c in 0..3 {
            out[p * 3 + c] = planes[c * PLANE_BYTES + p];
        }
    }
    out
}

/// One image's HWC pixels ([`PIXEL_BYTES`]) as R, G, B planes.
pub fn hwc_to_chw(hwc: &[u8]) -> Vec<u8> {
    assert_eq!(hwc.len(), PIXEL_BYTES, "a CIFAR image is 32×32×3");
    let mut out = Vec::with_capacity(PIXEL_BYTES);
    for c in 0..3 {
        out.extend(hwc.iter().skip(c).step_by(3));
    }
    out
}

/// One binary-version record: `label`, then the planes of the HWC image `hwc`.
pub fn record(label: u8, hwc: &[u8]) -> Vec<u8> {
    let mut rec = Vec::with_capacity(RECORD_BYTES);
    rec.push(label);
    rec.extend(hwc_to_chw(hwc));
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Vec<u8> {
        (0..PIXEL_BYTES).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn planes_become_hwc() {
        let mut planes = vec![0u8; PIXEL_BYTES];
        planes[5] = 10; // R of pixel 5
        planes[PLANE_BYTES + 5] = 20; // G
        planes[2 * PLANE_BYTES + 5] = 30; // B
        let hwc = chw_to_hwc(&planes);
        assert_eq!(&hwc[15..18], &[10, 20, 30]);
    }

    #[test]
    fn conversions_are_inverse() {
        let hwc = image();
        assert_eq!(chw_to_hwc(&hwc_to_chw(&hwc)), hwc);
        assert_eq!(hwc_to_chw(&chw_to_hwc(&hwc)), hwc);
    }

    #[test]
    fn a_record_is_the_label_then_r_g_b_planes() {
        let hwc = image();
        let rec = record(7, &hwc);
        assert_eq!(rec.len(), RECORD_BYTES);
        assert_eq!(rec[0], 7);
        for (y, x) in [(0, 0), (3, 17), (31, 31), (16, 2)] {
            for c in 0..3 {
                assert_eq!(
                    rec[1 + c * PLANE_BYTES + y * SIDE + x],
                    hwc[(y * SIDE + x) * 3 + c]
                );
            }
        }
    }
}
