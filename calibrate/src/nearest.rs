//! The k nearest reference rows of each query row by ℓ2, the references streamed block by
//! block (App. C.5.2's nearest neighbours of samples among training images, in Inception
//! feature space): only the queries and one block of references are ever held.
//!
//! Each block's squared distances come from [`crate::blockwise`] in one f32 GEMM; f32 only
//! chooses candidates. A reference whose f32 distance to a query is within twice the f32
//! error bound ([`f32_error_bound`]) of the k-th best so far — or of the block's own k-th
//! best — is a candidate; every candidate's distance is recomputed in f64 directly as
//! Σ(q − r)² from the features, and the running top k keeps f64 distances, ordered by
//! (distance, reference index). So cancellation in ‖q‖² + ‖r‖² − 2q·r can neither drop a true
//! neighbour nor misorder two, ties go to the earlier reference whatever the block size, and
//! the answer equals brute force in f64. Each candidate's f32 value is also checked against
//! its f64 value, as the calibration's winner is: a device whose GEMM breaks the bound (TF32
//! tensor cores, say) is an error instead of wrong neighbours.

use tch::{Device, Kind, Tensor};

use crate::blockwise::{f32_error_bound, squared_distances, squared_norms, Gram};
use crate::error::{Error, Result};

/// One of a query's nearest references.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbour<P = ()> {
    /// Position of the reference in the stream: rows of earlier blocks, then its row in its
    /// block.
    pub index: u64,
    /// Σ(q − r)² in f64 from the features.
    pub squared: f64,
    /// What the caller attached to the reference when it entered the top k.
    pub payload: P,
}

impl<P> Neighbour<P> {
    /// The ℓ2 distance.
    pub fn distance(&self) -> f64 {
        self.squared.sqrt()
    }
}

/// The running k nearest references of a set of queries.
pub struct Nearest<P = ()> {
    /// [m, d] f32 on the device the references are compared on.
    queries: Tensor,
    /// The same rows on the CPU, for the f64 recheck.
    host: Vec<f32>,
    /// Their squared norms, f32 on the device, and norms in f64 for the error bound.
    norms: Tensor,
    host_norms: Vec<f64>,
    dims: usize,
    k: usize,
    query_block: usize,
    /// Per query, at most k, sorted by (squared, index).
    best: Vec<Vec<Neighbour<P>>>,
    seen: u64,
}

impl<P> Nearest<P> {
    /// `queries`: [m, d] floats (m ≥ 1, d ≥ 1) on the device to compute on; `k` ≥ 1.
    pub fn new(queries: &Tensor, k: usize) -> Result<Self> {
        let size = queries.size();
        if size.len() != 2 || size[0] < 1 || size[1] < 1 {
            return Err(Error::Invalid(format!(
                "nearest neighbours take queries [m ≥ 1, d ≥ 1], got {size:?}"
            )));
        }
        if k == 0 {
            return Err(Error::Invalid("k = 0 nearest neighbours".into()));
        }
        let queries = queries.to_kind(Kind::Float).contiguous();
        let host = Vec::<f32>::try_from(queries.view([-1]).to_device(Device::Cpu))
            .map_err(Error::torch("reading the queries"))?;
        let norms = squared_norms(&queries);
        let dims = size[1] as usize;
        let host_norms = host
            .chunks(dims)
            .map(|q| q.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt())
            .collect();
        Ok(Nearest {
            queries,
            host,
            norms,
            host_norms,
            dims,
            k,
            query_block: 1024,
            best: (0..size[0]).map(|_| Vec::with_capacity(k + 1)).collect(),
            seen: 0,
        })
    }

    /// Queries per GEMM (default 1024): bounds the [queries × block] distance matrix.
    pub fn with_query_block(mut self, rows: usize) -> Self {
        self.query_block = rows.max(1);
        self
    }

    /// References offered so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Offers the next block of references ([n, d] floats, any device: moved to the queries'
    /// one). `payload(row)` is called for a row of this block each time it enters a query's
    /// top k (the caller's id, key or pixels of that reference).
    pub fn push(&mut self, refs: &Tensor, mut payload: impl FnMut(usize) -> P) -> Result<()> {
        let size = refs.size();
        if size.len() != 2 || size[1] as usize != self.dims {
            return Err(Error::Invalid(format!(
                "references {size:?} do not match queries of {} features",
                self.dims
            )));
        }
        let nb = size[0] as usize;
        if nb == 0 {
            return Ok(());
        }
        let refs = refs
            .to_device(self.queries.device())
            .to_kind(Kind::Float)
            .contiguous();
        let r_norms = squared_norms(&refs);
        let r_max = r_norms.max().double_value(&[]).sqrt();
        // Rows of `refs` on the CPU, fetched once and only when a candidate needs them.
        let mut host_refs: Option<Vec<f32>> = None;
        let m = self.best.len();
        let mut q0 = 0;
        while q0 < m {
            let mq = self.query_block.min(m - q0);
            let qb = self.queries.narrow(0, q0 as i64, mq as i64);
            let qn = self.norms.narrow(0, q0 as i64, mq as i64);
            let d2 = squared_distances(&qb, &qn, &refs, &r_norms, Gram::F32)?;
            let margins: Vec<f64> = (q0..q0 + mq)
                .map(|i| f32_error_bound(self.dims, self.host_norms[i], r_max))
                .collect();
            let block_kth: Option<Vec<f32>> = if nb >= self.k {
                let (v, _) = d2.kthvalue(self.k as i64, 1, false);
                Some(
                    Vec::<f32>::try_from(v.to_device(Device::Cpu))
                        .map_err(Error::torch("reading the block's k-th distances"))?,
                )
            } else {
                None
            };
            // A reference can beat the current k-th (true distance < it) or be among the
            // block's k best only if its f32 distance is within the margin of that threshold.
            let thresholds: Vec<f64> = (0..mq)
                .map(|i| {
                    let list = &self.best[q0 + i];
                    let kept = if list.len() == self.k {
                        list[self.k - 1].squared
                    } else {
                        f64::INFINITY
                    };
                    let block = block_kth
                        .as_ref()
                        .map_or(f64::INFINITY, |v| f64::from(v[i]) + margins[i]);
                    kept.min(block) + margins[i]
                })
                .collect();
            let thr = Tensor::from_slice(&thresholds).to_device(d2.device());
            let mask = d2.to_kind(Kind::Double).le_tensor(&thr.unsqueeze(1));
            // Row-major: by query, then by reference row — the order ties are settled in.
            let at = Vec::<i64>::try_from(mask.nonzero().reshape([-1]).to_device(Device::Cpu))
                .map_err(Error::torch("reading the candidates"))?;
            if at.is_empty() {
                q0 += mq;
                continue;
            }
            let flat: Vec<i64> = at.chunks(2).map(|p| p[0] * nb as i64 + p[1]).collect();
            let approx = Vec::<f32>::try_from(
                d2.reshape([-1])
                    .index_select(0, &Tensor::from_slice(&flat).to_device(d2.device()))
                    .to_device(Device::Cpu),
            )
            .map_err(Error::torch("reading the candidates' distances"))?;
            let host_refs = match &mut host_refs {
                Some(h) => h,
                None => host_refs.insert(
                    Vec::<f32>::try_from(refs.view([-1]).to_device(Device::Cpu))
                        .map_err(Error::torch("reading the references"))?,
                ),
            };
            for (pair, &f32_d2) in at.chunks(2).zip(&approx) {
                let (qi, rj) = (pair[0] as usize, pair[1] as usize);
                let q = &self.host[(q0 + qi) * self.dims..(q0 + qi + 1) * self.dims];
                let r = &host_refs[rj * self.dims..(rj + 1) * self.dims];
                let squared = squared_distance_f64(q, r);
                if (f64::from(f32_d2) - squared).abs() > margins[qi] {
                    return Err(Error::Internal(format!(
                        "the f32 GEMM on {:?} gave squared distance {f32_d2} for query {} and \
                         reference {}, f64 gives {squared}: beyond the f32 error bound {} (are \
                         TF32 or reduced-precision matmuls enabled?)",
                        self.queries.device(),
                        q0 + qi,
                        self.seen + rj as u64,
                        margins[qi]
                    )));
                }
                let index = self.seen + rj as u64;
                let list = &mut self.best[q0 + qi];
                let pos = list.partition_point(|e| {
                    e.squared
                        .total_cmp(&squared)
                        .then(e.index.cmp(&index))
                        .is_lt()
                });
                if pos < self.k {
                    list.insert(
                        pos,
                        Neighbour {
                            index,
                            squared,
                            payload: payload(rj),
                        },
                    );
                    list.truncate(self.k);
                }
            }
            q0 += mq;
        }
        self.seen += nb as u64;
        Ok(())
    }

    /// Per query, its nearest references (k, or all of them when fewer were offered), nearest
    /// first.
    pub fn finish(self) -> Vec<Vec<Neighbour<P>>> {
        self.best
    }
}

/// Σ(q − r)² in f64, summed in order: the recheck, and the brute force it equals.
pub fn squared_distance_f64(q: &[f32], r: &[f32]) -> f64 {
    q.iter()
        .zip(r)
        .map(|(&a, &b)| {
            let d = f64::from(a) - f64::from(b);
            d * d
        })
        .sum()
}

/// The k nearest rows of `refs` ([n, d]) for each row of `queries` ([m, d]), the references
/// taken `block_rows` at a time.
pub fn nearest(
    queries: &Tensor,
    refs: &Tensor,
    k: usize,
    block_rows: usize,
) -> Result<Vec<Vec<Neighbour>>> {
    let mut nn = Nearest::new(queries, k)?;
    let n = refs.size()[0];
    let block = block_rows.max(1) as i64;
    let mut r0 = 0;
    while r0 < n {
        let nb = block.min(n - r0);
        nn.push(&refs.narrow(0, r0, nb), |_| ())?;
        r0 += nb;
    }
    Ok(nn.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Every (index, f64 distance) sorted by (distance, index), the first k.
    fn brute_force(q: &[f32], r: &[f32], dims: usize, k: usize) -> Vec<Vec<(u64, f64)>> {
        q.chunks(dims)
            .map(|q| {
                let mut all: Vec<(u64, f64)> = r
                    .chunks(dims)
                    .enumerate()
                    .map(|(j, r)| (j as u64, squared_distance_f64(q, r)))
                    .collect();
                all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                all.truncate(k);
                all
            })
            .collect()
    }

    fn check(q: &[f32], r: &[f32], dims: usize, k: usize, what: &str) {
        let qt = Tensor::from_slice(q).view([-1, dims as i64]);
        let rt = Tensor::from_slice(r).view([-1, dims as i64]);
        let want = brute_force(q, r, dims, k);
        for block in [1, 2, 3, 7, 16, 1000] {
            for query_block in [1, 3, 1024] {
                let mut nn = Nearest::new(&qt, k).unwrap().with_query_block(query_block);
                let n = r.len() / dims;
                let mut r0 = 0;
                while r0 < n {
                    let nb = block.min(n - r0);
                    nn.push(&rt.narrow(0, r0 as i64, nb as i64), |j| (r0 + j) as u64)
                        .unwrap();
                    r0 += nb;
                }
                let got: Vec<Vec<(u64, f64)>> = nn
                    .finish()
                    .into_iter()
                    .map(|l| {
                        l.into_iter()
                            .map(|e| {
                                assert_eq!(e.payload, e.index, "{what}: payload follows the row");
                                (e.index, e.squared)
                            })
                            .collect()
                    })
                    .collect();
                assert_eq!(
                    got, want,
                    "{what}: blocks of {block}, queries by {query_block}"
                );
            }
        }
    }

    fn random(n: usize, seed: u64, f: impl Fn(&mut ChaCha8Rng) -> f32) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| f(&mut rng)).collect()
    }

    #[test]
    fn equals_brute_force_on_random_floats() {
        let dims = 37;
        let q = random(5 * dims, 1, |g| g.random_range(-1.0..1.0));
        let r = random(41 * dims, 2, |g| g.random_range(-1.0..1.0));
        for k in [1, 4, 41] {
            check(&q, &r, dims, k, &format!("random, k={k}"));
        }
    }

    #[test]
    fn ties_go_to_the_earlier_reference() {
        // Small integers: many exactly equal distances, and duplicated references.
        let dims = 6;
        let base = random(9 * dims, 3, |g| g.random_range(0..3) as f32);
        let mut r = base.clone();
        r.extend_from_slice(&base[..4 * dims]);
        r.extend_from_slice(&base[2 * dims..3 * dims]);
        let q = random(4 * dims, 4, |g| g.random_range(0..3) as f32);
        for k in [1, 3, 8, 14] {
            check(&q, &r, dims, k, &format!("ties, k={k}"));
        }
    }

    #[test]
    fn cancellation_does_not_misorder_near_duplicates() {
        // Features far from the origin differing by less than f32 resolves in ‖q‖² + ‖r‖²:
        // the f32 values tie or misorder; the f64 recheck must not.
        let dims = 64;
        let base = random(dims, 5, |g| g.random_range(900.0..1000.0));
        let mut r = vec![];
        for i in 0..20 {
            r.extend(base.iter().enumerate().map(|(k, &x)| {
                if k == i % dims {
                    x + 0.001 * (20 - i) as f32
                } else {
                    x
                }
            }));
        }
        check(&base, &r, dims, 5, "near-duplicates");
    }

    #[test]
    fn fewer_references_than_k_gives_them_all() {
        let q = random(6, 6, |g| g.random_range(-1.0..1.0));
        let r = random(9, 7, |g| g.random_range(-1.0..1.0));
        let got = nearest(
            &Tensor::from_slice(&q).view([2, 3]),
            &Tensor::from_slice(&r).view([3, 3]),
            5,
            2,
        )
        .unwrap();
        assert!(got.iter().all(|l| l.len() == 3));
    }
}
