//! FID statistics: μ and Σ of a set's pool3 features, accumulated batch by batch, and their
//! `.npz` files in pytorch-fid's layout (`mu`, `sigma`; `save_fid_stats` writes float64, TTUR's
//! files hold float32 μ), so files go both ways between ncsn, pytorch-fid and TTUR. ncsn adds
//! `num_images` and `image_size`, which the others ignore and ncsn checks.

use std::path::Path;

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::npz::{NpyData, Npz};

/// μ [d] and Σ [d, d] of a set of features, f64 on the CPU.
#[derive(Debug)]
pub struct Stats {
    pub mu: Tensor,
    pub sigma: Tensor,
    /// How many images they come from, when known (files of ncsn record it).
    pub num_images: Option<u64>,
    /// The images' [height, width], when known: features of 32² and 64² images are not
    /// comparable, although both are 2048-d.
    pub image_size: Option<[u32; 2]>,
}

impl Stats {
    /// d, the feature dimension.
    pub fn dims(&self) -> usize {
        self.mu.size()[0] as usize
    }

    /// Whether Σ is singular because it has at most d images behind it (rank ≤ N − 1).
    pub fn singular(&self) -> bool {
        self.num_images.is_some_and(|n| n <= self.dims() as u64)
    }

    /// Writes `mu`, `sigma` (float64), `num_images` and `image_size` (int64) to `path`.
    pub fn write_npz(&self, path: &Path) -> Result<()> {
        let d = self.dims();
        let mu = Vec::<f64>::try_from(&self.mu.to_kind(Kind::Double).contiguous())
            .map_err(Error::torch("reading μ"))?;
        let sigma = Vec::<f64>::try_from(&self.sigma.to_kind(Kind::Double).contiguous().view(-1))
            .map_err(Error::torch("reading Σ"))?;
        let mut arrays = vec![
            ("mu", shards::npy_f64(&[d], &mu)),
            ("sigma", shards::npy_f64(&[d, d], &sigma)),
        ];
        if let Some(n) = self.num_images {
            arrays.push(("num_images", shards::npy_i64(&[], &[n as i64])));
        }
        if let Some([h, w]) = self.image_size {
            arrays.push(("image_size", shards::npy_i64(&[2], &[h.into(), w.into()])));
        }
        shards::write_npz(path, &arrays)?;
        Ok(())
    }

    /// Reads a pytorch-fid/TTUR/ncsn statistics file. Refused, naming the file: no `mu` or
    /// `sigma`, shapes that do not fit each other, NaN or infinity.
    pub fn read_npz(path: &Path) -> Result<Stats> {
        let mut npz = Npz::open(path)?;
        if !npz.contains("mu") || !npz.contains("sigma") {
            return Err(Error::file(
                path,
                format!(
                    "no `mu` and `sigma` arrays: not FID statistics (pytorch-fid/TTUR .npz); it \
                     holds: {}",
                    npz.names().join(", ")
                ),
            ));
        }
        let mu = npz.read("mu")?;
        let sigma = npz.read("sigma")?;
        let d = mu.shape.iter().product::<usize>();
        if mu.shape.len() != 1 || sigma.shape != [d, d] {
            return Err(Error::file(
                path,
                format!(
                    "mu is {:?} and sigma {:?}: expected [d] and [d, d]",
                    mu.shape, sigma.shape
                ),
            ));
        }
        let float = |a: &NpyData, name: &str| match a {
            NpyData::F32(_) | NpyData::F64(_) => {
                let v = a.to_f64();
                if v.iter().all(|x| x.is_finite()) {
                    Ok(v)
                } else {
                    Err(Error::file(path, format!("`{name}` holds NaN or infinity")))
                }
            }
            other => Err(Error::file(
                path,
                format!("`{name}` is {}, not float", other.dtype()),
            )),
        };
        let mu_v = float(&mu.data, "mu")?;
        let sigma_v = float(&sigma.data, "sigma")?;
        let scalar = |npz: &mut Npz, name: &str| -> Result<Option<Vec<i64>>> {
            if !npz.contains(name) {
                return Ok(None);
            }
            match npz.read(name)?.data {
                NpyData::I64(v) => Ok(Some(v)),
                other => Err(Error::file(
                    path,
                    format!("`{name}` is {}, not int64", other.dtype()),
                )),
            }
        };
        let num_images = match scalar(&mut npz, "num_images")?.as_deref() {
            Some([n]) if *n >= 0 => Some(*n as u64),
            Some(_) => return Err(Error::file(path, "`num_images` is not one count")),
            None => None,
        };
        let image_size = match scalar(&mut npz, "image_size")?.as_deref() {
            Some([h, w]) if *h > 0 && *w > 0 => Some([*h as u32, *w as u32]),
            Some(_) => return Err(Error::file(path, "`image_size` is not [height, width]")),
            None => None,
        };
        Ok(Stats {
            mu: Tensor::from_slice(&mu_v),
            sigma: Tensor::from_slice(&sigma_v).view([d as i64, d as i64]),
            num_images,
            image_size,
        })
    }

    /// Refuses reference statistics that cannot be compared with features of `dims` from
    /// images of `image_size`, naming the file they came from.
    /// `image_size` is that of the samples, when they all have one.
    pub fn check_comparable(
        &self,
        path: &Path,
        dims: usize,
        image_size: Option<[u32; 2]>,
    ) -> Result<()> {
        if self.dims() != dims {
            return Err(Error::file(
                path,
                format!(
                    "statistics of {}-d features, the FID Inception pool3 features are {dims}-d \
                     (pytorch-fid --dims 2048)",
                    self.dims()
                ),
            ));
        }
        if let (Some([h, w]), Some(image_size)) = (self.image_size, image_size) {
            if [h, w] != image_size {
                return Err(Error::file(
                    path,
                    format!(
                        "statistics of {h}×{w} images, the samples are {}×{}: FIDs across \
                         resolutions are not comparable",
                        image_size[0], image_size[1]
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Running sums of features for μ and Σ, in f64 on the features' device. Sums are taken about
/// the first batch's mean, so Σ = (Σ(x−c)(x−c)ᵀ − N·δδᵀ)/(N − 1) does not lose digits to
/// cancellation when μ is large against the spread; any number of images fits in O(d²).
#[derive(Debug, Default)]
pub struct Moments {
    n: u64,
    shift: Option<Tensor>,
    sum: Option<Tensor>,
    outer: Option<Tensor>,
}

impl Moments {
    pub fn new() -> Self {
        Self::default()
    }

    /// Images added so far.
    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Adds a batch of features [B, d].
    pub fn add(&mut self, features: &Tensor) {
        let x = features.to_kind(Kind::Double);
        let shift = self
            .shift
            .get_or_insert_with(|| x.mean_dim(0, false, Kind::Double));
        let centred = x - &*shift;
        let s = centred.sum_dim_intlist(0, false, Kind::Double);
        let o = centred.tr().matmul(&centred);
        self.sum = Some(match self.sum.take() {
            Some(acc) => acc + s,
            None => s,
        });
        self.outer = Some(match self.outer.take() {
            Some(acc) => acc + o,
            None => o,
        });
        self.n += features.size()[0] as u64;
    }

    /// μ and Σ (the unbiased covariance, as `np.cov(rowvar=False)`), on the CPU. Needs ≥ 2
    /// images.
    pub fn stats(&self) -> Result<Stats> {
        let (Some(shift), Some(sum), Some(outer)) = (&self.shift, &self.sum, &self.outer) else {
            return Err(Error::Invalid("no features to take statistics of".into()));
        };
        if self.n < 2 {
            return Err(Error::Invalid(
                "a covariance needs at least 2 images, got 1".into(),
            ));
        }
        let n = self.n as f64;
        let delta = sum / n;
        let mu = shift + &delta;
        let sigma = (outer - delta.outer(&delta) * n) / (n - 1.0);
        Ok(Stats {
            mu: mu.to_device(Device::Cpu),
            sigma: sigma.to_device(Device::Cpu),
            num_images: Some(self.n),
            image_size: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_match_the_two_pass_formulas() {
        let x = Tensor::randn([37, 5], (Kind::Double, Device::Cpu)) * 3.0 + 100.0;
        let mut m = Moments::new();
        m.add(&x.narrow(0, 0, 10));
        m.add(&x.narrow(0, 10, 27));
        let s = m.stats().unwrap();
        let mu = x.mean_dim(0, false, Kind::Double);
        let c = &x - &mu;
        let sigma = c.tr().matmul(&c) / 36.0;
        assert!((s.mu - mu).abs().max().double_value(&[]) < 1e-12);
        assert!((s.sigma - sigma).abs().max().double_value(&[]) < 1e-10);
        assert_eq!(m.len(), 37);
    }

    #[test]
    fn stats_round_trip_through_npz() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.npz");
        let x = Tensor::randn([4, 4], (Kind::Double, Device::Cpu));
        let mut m = Moments::new();
        m.add(&x);
        let mut s = m.stats().unwrap();
        s.image_size = Some([32, 32]);
        s.write_npz(&p).unwrap();
        let r = Stats::read_npz(&p).unwrap();
        assert_eq!(r.mu, s.mu);
        assert_eq!(r.sigma, s.sigma);
        assert_eq!((r.num_images, r.image_size), (Some(4), Some([32, 32])));
        assert!(r.singular());
        let err = r
            .check_comparable(&p, 2048, Some([32, 32]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("{}: ", p.display())) && err.contains("4-d"),
            "{err}"
        );
        let err = r
            .check_comparable(&p, 4, Some([64, 64]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("32×32") && err.contains("64×64"), "{err}");
    }

    #[test]
    fn files_without_mu_and_sigma_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npz");
        shards::write_npz_u8(&p, &[("arr_0", &[2], &[1, 2])]).unwrap();
        let err = Stats::read_npz(&p).unwrap_err().to_string();
        assert!(err.contains("arr_0") && err.contains("mu"), "{err}");
    }
}
