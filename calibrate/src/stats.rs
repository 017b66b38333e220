//! Per-channel mean and standard deviation of the images calibration used, pixels in [0, 1].

/// Mean and population standard deviation of each channel of HWC uint8 images, computed from
/// exact integer sums (no accumulation error however many pixels).
pub fn channel_mean_std(pixels: &[u8], channels: usize) -> (Vec<f64>, Vec<f64>) {
    let mut sum = vec![0u64; channels];
    let mut sq = vec![0u64; channels];
    for px in pixels.chunks_exact(channels) {
        for (c, &v) in px.iter().enumerate() {
            let v = u64::from(v);
            sum[c] += v;
            sq[c] += v * v;
        }
    }
    let count = (pixels.len() / channels.max(1)) as f64;
    let mut mean = Vec::with_capacity(channels);
    let mut std = Vec::with_capacity(channels);
    for c in 0..channels {
        let m = sum[c] as f64 / count;
        // E[x²] − E[x]², from exact sums; clamp the tiny negative round-off of a constant channel.
        let var = (sq[c] as f64 / count - m * m).max(0.0);
        mean.push(m / 255.0);
        std.push(var.sqrt() / 255.0);
    }
    (mean, std)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_direct_two_pass_computation() {
        // 3 images of 2×2 RGB with a pattern per channel.
        let pixels: Vec<u8> = (0..36u32).map(|i| ((i * 37 + i / 3) % 256) as u8).collect();
        let (mean, std) = channel_mean_std(&pixels, 3);
        for c in 0..3 {
            let v: Vec<f64> = pixels
                .iter()
                .skip(c)
                .step_by(3)
                .map(|&x| f64::from(x) / 255.0)
                .collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let s = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
            assert!((mean[c] - m).abs() < 1e-15 && (std[c] - s).abs() < 1e-12);
        }
        let (m, s) = channel_mean_std(&[255, 0, 7, 255, 0, 7], 3);
        assert_eq!(m, vec![1.0, 0.0, 7.0 / 255.0]);
        assert_eq!(s, vec![0.0, 0.0, 0.0]);
    }
}
