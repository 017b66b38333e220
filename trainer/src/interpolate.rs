//! Interpolation between samples (paper App. B.2): every image of a row starts from the same
//! x₀, and the k-th image of the row uses the noises cos(kπ/2(N+1)) z⁽¹⁾ + sin(kπ/2(N+1)) z⁽²⁾
//! at every Langevin step. k = 0 and k = N+1 are the two endpoints x⁽¹⁾ and x⁽²⁾, so a row holds
//! N+2 images (the authors' code: `torch.linspace(0, π/2, n_interpolations)`).

use tch::{Device, Kind, Tensor};

use crate::langevin::NoiseSource;

/// The angles kπ/(2(N+1)) for k = 0..=N+1.
pub fn angles(n_between: usize) -> Vec<f64> {
    let denom = 2.0 * (n_between + 1) as f64;
    (0..n_between + 2)
        .map(|k| k as f64 * std::f64::consts::PI / denom)
        .collect()
}

/// Wraps a noise source so that a batch of `rows × (N+2)` chains (row-major) shares x₀ within a
/// row and mixes two noise draws per row by cos/sin. Pass it to `anneal_langevin` unchanged.
pub struct InterpolationNoise<'a> {
    inner: &'a mut dyn NoiseSource,
    rows: i64,
    weights: Vec<(f64, f64)>,
}

impl<'a> InterpolationNoise<'a> {
    pub fn new(inner: &'a mut dyn NoiseSource, rows: usize, n_between: usize) -> Self {
        let weights = angles(n_between)
            .into_iter()
            .map(|a| (a.cos(), a.sin()))
            .collect();
        Self {
            inner,
            rows: rows as i64,
            weights,
        }
    }

    /// Images per row (N + 2).
    pub fn per_row(&self) -> i64 {
        self.weights.len() as i64
    }

    /// The shape of one draw for a whole row: `[rows, rest...]`.
    fn row_shape(&self, shape: &[i64]) -> Vec<i64> {
        assert_eq!(
            shape[0],
            self.rows * self.per_row(),
            "interpolation batch must hold rows × (N+2) chains"
        );
        let mut s = shape.to_vec();
        s[0] = self.rows;
        s
    }
}

impl NoiseSource for InterpolationNoise<'_> {
    fn uniform(&mut self, shape: &[i64], device: Device) -> Tensor {
        let row = self.inner.uniform(&self.row_shape(shape), device);
        row.repeat_interleave_self_int(self.per_row(), 0i64, None::<i64>)
    }

    fn normal(&mut self, shape: &[i64], device: Device) -> Tensor {
        let rs = self.row_shape(shape);
        let z1 = self.inner.normal(&rs, device);
        let z2 = self.inner.normal(&rs, device);
        let (c, s): (Vec<f32>, Vec<f32>) = self
            .weights
            .iter()
            .map(|&(c, s)| (c as f32, s as f32))
            .unzip();
        // [rows, 1, rest] × [1, N+2, 1...] -> [rows, N+2, rest] -> [rows·(N+2), rest]
        let mut wshape = vec![1, self.per_row()];
        wshape.extend(std::iter::repeat_n(1, rs.len() - 1));
        let cw = Tensor::from_slice(&c)
            .view(wshape.as_slice())
            .to_device(device);
        let sw = Tensor::from_slice(&s)
            .view(wshape.as_slice())
            .to_device(device);
        let z = z1.unsqueeze(1) * cw + z2.unsqueeze(1) * sw;
        z.to_kind(Kind::Float).reshape(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::langevin::SeededNoise;

    #[test]
    fn angles_run_from_0_to_half_pi() {
        let a = angles(3);
        assert_eq!(a.len(), 5);
        assert_eq!(a[0], 0.0);
        assert!((a[4] - std::f64::consts::FRAC_PI_2).abs() < 1e-15);
        assert!((a[1] - std::f64::consts::PI / 8.0).abs() < 1e-15);
    }

    #[test]
    fn rows_share_x0_and_mix_two_noises() {
        let mut base = SeededNoise::new(1);
        let mut noise = InterpolationNoise::new(&mut base, 2, 2);
        let shape = [8, 3, 2, 2];
        let x0 = noise.uniform(&shape, Device::Cpu);
        assert!(x0.get(0).equal(&x0.get(3)));
        assert!(x0.get(4).equal(&x0.get(7)));
        assert!(!x0.get(0).equal(&x0.get(4)));
        let z = noise.normal(&shape, Device::Cpu);
        // Replay the same draws: z1, z2 for both rows.
        let mut again = SeededNoise::new(1);
        let _ = again.uniform(&[2, 3, 2, 2], Device::Cpu);
        let z1 = again.normal(&[2, 3, 2, 2], Device::Cpu);
        let z2 = again.normal(&[2, 3, 2, 2], Device::Cpu);
        assert!(z.get(0).allclose(&z1.get(0), 1e-6, 1e-6, false)); // k = 0: pure z1
        assert!(z.get(3).allclose(&z2.get(0), 1e-6, 1e-6, false)); // k = N+1: pure z2
        let a = std::f64::consts::PI / 6.0; // k = 1 of N = 2
        let want = z1.get(1) * a.cos() + z2.get(1) * a.sin();
        assert!(z.get(5).allclose(&want, 1e-6, 1e-6, false));
        // Unit-norm weights keep every mixed noise standard normal.
        let var = z.var(true).double_value(&[]);
        assert!((var - 1.0).abs() < 0.5, "{var}");
    }
}
