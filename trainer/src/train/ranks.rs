//! Synchronous data-parallel training over several processes (issue 16): one process per GPU,
//! launched by `torchrun` or Slurm's `srun`, gradients summed by libtorch's own c10d process
//! groups (NCCL on GPUs, Gloo on the CPU; `torchrt::dist`).
//!
//! What makes N processes train the one model a single process would:
//! - the same global batches: every rank streams the same row sequence and keeps rows
//!   rank, rank + N, … of each batch ([`Shard`]); the random draws of a step (dequantisation
//!   noise, σ indices, z) are drawn for the whole global batch from the step's seeded
//!   generator on every rank, and each rank takes its rows' share ([`Ranks::draws`]);
//! - the same gradient: each rank's loss is its samples' share of the global mean (their sum
//!   divided by the global batch size), so the sum over ranks of the gradients is the
//!   gradient of the global mean; one all-reduce per step sums them in a flat buffer, with the
//!   loss and a stop vote riding along ([`Ranks::sum_gradients`]);
//! - the same start: rank 0 builds or resumes the run and broadcasts the weights, the EMA,
//!   Adam's moments and the position ([`Ranks::share_start`]); identical gradients then keep
//!   Adam and the EMA identical on every rank without further traffic.
//!
//! Rank 0 alone writes (the workdir lock, checkpoints, metrics, TensorBoard, samples) and
//! reports progress. A signal to any rank is a vote carried by the all-reduce: all ranks stop
//! after the same step and rank 0 writes the checkpoint. A rank that dies makes the next
//! collective of the others fail (Gloo: the connection closes; NCCL: the timeout), and they
//! exit naming it instead of hanging.

use std::time::Duration;

use tch::{Device, Kind, Tensor};
use torchrt::dist::{Backend, ProcessGroup, Store};

use super::nets::Nets;
use super::resume::Start;
use super::{Result, TrainError};
use crate::data_transform::{DataTransform, TorchRng};
use crate::langevin::NoiseSource;
use crate::loader::Shard;
use crate::optim::Adam;

/// The kinds of network variables [`Ranks::share_start`] broadcasts (one flat buffer each).
const FLOAT_KINDS: [Kind; 4] = [Kind::Float, Kind::Double, Kind::Half, Kind::BFloat16];

/// Where this process sits in a run launched by torchrun or srun, from their environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub rank: usize,
    pub world: usize,
    /// The GPU of this process on its node (`cuda` means `cuda:LOCAL_RANK`).
    pub local_rank: usize,
    pub master_addr: String,
    pub master_port: u16,
    /// torchrun's agent hosts the store (`TORCHELASTIC_USE_AGENT_STORE`): rank 0 connects to
    /// it as a client like the others instead of serving it.
    pub agent_store: bool,
    /// torchrun's `TORCHELASTIC_RESTART_COUNT`: a restarted attempt's keys are its own.
    pub attempt: u64,
}

impl Launch {
    /// The launch described by the process's environment: torchrun's `WORLD_SIZE`, `RANK`,
    /// `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`, or srun's `SLURM_STEP_NUM_TASKS`,
    /// `SLURM_PROCID`, `SLURM_LOCALID` with `MASTER_ADDR` and `MASTER_PORT` exported by the job
    /// script. `None`: a single process.
    pub fn from_env() -> std::result::Result<Option<Self>, String> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// [`Launch::from_env`] over any variable lookup.
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> std::result::Result<Option<Self>, String> {
        let num = |k: &str| -> std::result::Result<Option<u64>, String> {
            var(k)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| format!("{k}={v:?} is not a non-negative integer"))
                })
                .transpose()
        };
        let (rank, world, local_rank, launcher) = if let Some(world) = num("WORLD_SIZE")? {
            let rank = num("RANK")?
                .ok_or("WORLD_SIZE is set but RANK is not (torchrun sets both)".to_string())?;
            (rank, world, num("LOCAL_RANK")?.unwrap_or(rank), "torchrun")
        } else if let Some(world) = num("SLURM_STEP_NUM_TASKS")? {
            if world <= 1 {
                return Ok(None);
            }
            let rank = num("SLURM_PROCID")?.ok_or(
                "SLURM_STEP_NUM_TASKS is set but SLURM_PROCID is not (launch with srun)"
                    .to_string(),
            )?;
            (rank, world, num("SLURM_LOCALID")?.unwrap_or(0), "srun")
        } else {
            return Ok(None);
        };
        if world == 0 || rank >= world {
            return Err(format!("{launcher}: rank {rank} of a world of {world}"));
        }
        let master_addr = var("MASTER_ADDR").filter(|a| !a.is_empty()).ok_or(format!(
            "{launcher} started {world} processes but MASTER_ADDR is not set: export \
             MASTER_ADDR (the first node's host name, e.g. `scontrol show hostnames \
             \"$SLURM_JOB_NODELIST\" | head -n1`) and MASTER_PORT (a free port) before srun"
        ))?;
        let port = var("MASTER_PORT").ok_or(format!(
            "{launcher} started {world} processes but MASTER_PORT is not set"
        ))?;
        let master_port = port
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("MASTER_PORT={port:?} is not a port number"))?;
        let agent_store = var("TORCHELASTIC_USE_AGENT_STORE")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1"));
        Ok(Some(Self {
            rank: rank as usize,
            world: world as usize,
            local_rank: local_rank as usize,
            master_addr,
            master_port,
            agent_store,
            attempt: num("TORCHELASTIC_RESTART_COUNT")?.unwrap_or(0),
        }))
    }
}

/// A data-parallel run: where this process sits and how the ranks talk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistOptions {
    pub launch: Launch,
    /// NCCL for CUDA tensors, Gloo for CPU ones.
    pub backend: Backend,
    /// How long a collective (or the rendezvous) may wait for the slowest rank, rank 0's
    /// snapshots (samples, FID) included, before the run fails.
    pub timeout: Duration,
}

impl DistOptions {
    /// How a launched process takes part: on CUDA its node's GPU `LOCAL_RANK` (`device` is
    /// changed to it unless `explicit_index`, a `cuda:N` the user typed), over `backend` or,
    /// when `None`, NCCL on CUDA and Gloo on the CPU.
    pub fn for_launch(
        launch: Launch,
        backend: Option<Backend>,
        timeout: Duration,
        device: &mut Device,
        explicit_index: bool,
    ) -> Self {
        if device.is_cuda() && !explicit_index {
            *device = Device::Cuda(launch.local_rank);
        }
        let backend = backend.unwrap_or(match device {
            Device::Cpu => Backend::Gloo,
            _ => Backend::Nccl,
        });
        Self {
            launch,
            backend,
            timeout,
        }
    }
}

/// The ranks of this run as the training loop sees them; one process is a world of one.
pub(super) struct Ranks {
    group: Option<ProcessGroup>,
    pub shard: Shard,
    /// The gradients, the loss and the stop vote of a step, summed in one all-reduce.
    flat: Option<Tensor>,
}

impl Ranks {
    /// Joins the run's process group (every rank must get here), or a world of one.
    pub fn join(dist: Option<&DistOptions>, device: Device) -> Result<Self> {
        let Some(d) = dist else {
            return Ok(Self {
                group: None,
                shard: Shard::ALL,
                flat: None,
            });
        };
        let l = &d.launch;
        let fail = |what: &str, e: torchrt::dist::DistError| {
            TrainError::Dist(format!("{what} ({}:{}): {e}", l.master_addr, l.master_port))
        };
        match (d.backend, device) {
            (Backend::Nccl, Device::Cpu) => {
                return Err(TrainError::Config(
                    "--dist-backend nccl needs --device cuda (Gloo is the CPU backend)".into(),
                ))
            }
            (Backend::Gloo, Device::Cuda(_)) => {
                return Err(TrainError::Config(
                    "--dist-backend gloo runs on the CPU; on GPUs use nccl".into(),
                ))
            }
            _ => {}
        }
        if let Device::Cuda(index) = device {
            torchrt::accel::set_cuda_device(index)?;
        }
        let is_server = l.rank == 0 && !l.agent_store;
        let store = Store::tcp(&l.master_addr, l.master_port, l.world, is_server, d.timeout)
            .map_err(|e| fail("connecting to the rendezvous store", e))?;
        // torchrun's own prefix for an attempt, then ours: restarts and other users of the
        // agent's store never see these keys.
        let store = store.prefixed(&format!("/worker/attempt_{}/ncsn/", l.attempt));
        let group = ProcessGroup::new(d.backend, &store, l.rank, l.world, d.timeout)
            .map_err(|e| fail(&format!("starting the {} process group", d.backend), e))?;
        Ok(Self {
            group: Some(group),
            shard: Shard {
                rank: l.rank,
                world: l.world,
            },
            flat: None,
        })
    }

    /// Rank 0, the one that writes.
    pub fn leader(&self) -> bool {
        self.shard.rank == 0
    }

    /// More than this process takes part (a world of one under torchrun counts: it runs the
    /// collectives).
    pub fn parallel(&self) -> bool {
        self.group.is_some()
    }

    /// Every rank starts where rank 0 does: its weights, EMA, Adam moments and step, and the
    /// data position. `start` is rank 0's (the other ranks pass `None`).
    pub fn share_start(&self, nets: &Nets, adam: &mut Adam, start: Option<Start>) -> Result<Start> {
        let Some(group) = &self.group else {
            return Ok(start.expect("a single process starts itself"));
        };
        let _no_grad = tch::no_grad_guard();
        let mut state: Vec<Tensor> = nets.tensors().into_iter().map(|(_, t)| t).collect();
        state.extend(adam.state().into_iter().skip(1).map(|(_, t)| t));
        // Every rank has the same network, so every rank refuses alike, before any traffic.
        if let Some(t) = state.iter().find(|t| !FLOAT_KINDS.contains(&t.kind())) {
            return Err(TrainError::Dist(format!(
                "a network variable of kind {:?} cannot be shared between ranks",
                t.kind()
            )));
        }
        let mut position = match &start {
            Some(s) => Tensor::from_slice(&[
                s.step as i64,
                s.cursor.epoch as i64,
                s.cursor.rows_consumed as i64,
                adam.step as i64,
            ]),
            None => Tensor::zeros([4], (Kind::Int64, Device::Cpu)),
        }
        .to_device(nets.vs.device());
        group
            .broadcast(&mut position, 0)
            .map_err(collective_failed(
                "receiving the start position from rank 0".into(),
            ))?;
        let p = Vec::<i64>::try_from(position.to_device(Device::Cpu)).expect("4 int64 values");
        for kind in FLOAT_KINDS {
            let of_kind: Vec<&Tensor> = state.iter().filter(|t| t.kind() == kind).collect();
            if of_kind.is_empty() {
                continue;
            }
            let mut flat = Tensor::cat(
                &of_kind.iter().map(|t| t.reshape([-1])).collect::<Vec<_>>(),
                0,
            );
            group.broadcast(&mut flat, 0).map_err(collective_failed(
                "receiving the weights from rank 0".into(),
            ))?;
            unflatten(&flat, &of_kind);
        }
        adam.step = p[3] as u64;
        Ok(start.unwrap_or(Start {
            step: p[0] as u64,
            cursor: schemas::checkpoint::DataCursor {
                epoch: p[1] as u64,
                rows_consumed: p[2] as u64,
            },
            checkpoint: None,
        }))
    }

    /// Sums over the ranks, in place, the gradients of `params` (the gradient of each rank's
    /// share of the mean loss: their sum is the gradient of the global mean), and with them
    /// `extras` (float32 scalars: the loss share, the stop vote). Returns the summed extras.
    pub fn sum_gradients(
        &mut self,
        params: &[&Tensor],
        extras: &Tensor,
        step: u64,
    ) -> Result<Tensor> {
        let group = self
            .group
            .as_ref()
            .expect("only a parallel run sums gradients");
        let _no_grad = tch::no_grad_guard();
        let grads: Vec<Tensor> = params.iter().map(|p| p.grad()).collect();
        let numels: Vec<i64> = params.iter().map(|p| p.numel() as i64).collect();
        let total: i64 = numels.iter().sum::<i64>() + extras.numel() as i64;
        let device = extras.device();
        let flat = self
            .flat
            .get_or_insert_with(|| Tensor::zeros([total], (Kind::Float, device)));
        let mut at = 0;
        for (g, &n) in grads.iter().zip(&numels) {
            let mut slot = flat.narrow(0, at, n);
            if g.defined() {
                slot.copy_(&g.reshape([-1]));
            } else {
                let _ = slot.zero_();
            }
            at += n;
        }
        flat.narrow(0, at, extras.numel() as i64)
            .copy_(&extras.reshape([-1]));
        group
            .all_reduce_sum(flat)
            .map_err(collective_failed(format!(
                "summing the gradients of step {step}"
            )))?;
        let mut at = 0;
        for (mut g, &n) in grads.into_iter().zip(&numels) {
            if g.defined() {
                let shape = g.size();
                g.copy_(&flat.narrow(0, at, n).view(shape.as_slice()));
            }
            at += n;
        }
        Ok(flat.narrow(0, at, extras.numel() as i64).copy())
    }
}

/// What the rank `shard` draws for its rows of a `global`-row batch `x` (its rows only) at a
/// step, from torch's generator as seeded for the step: the draws of the whole batch, as one
/// process makes them (the data transform's noise, σ indices, z), then this rank's rows of
/// each. Returns (transformed x, y, z, the whole batch's y).
pub fn draws_of_rows(
    shard: Shard,
    x: &Tensor,
    global: usize,
    transform: &DataTransform,
    num_sigmas: i64,
) -> (Tensor, Tensor, Tensor, Tensor) {
    let device = x.device();
    let rows = Tensor::arange_start_step(
        shard.rank as i64,
        global as i64,
        shard.world as i64,
        (Kind::Int64, device),
    );
    let mut noise = RowsOf {
        rows: &rows,
        global: global as i64,
    };
    let x = transform.forward(x, &mut noise);
    let y_all = Tensor::randint(num_sigmas, [global as i64], (Kind::Int64, device));
    let y = y_all.index_select(0, &rows);
    let z = noise.normal(&x.size(), device);
    (x, y, z, y_all)
}

/// A collective that failed, most often because another rank is gone (the error says which
/// collective; the launcher says which rank the process is).
fn collective_failed(what: String) -> impl FnOnce(torchrt::dist::DistError) -> TrainError {
    move |e| {
        TrainError::Dist(format!(
            "{what}: {e} (a rank that stopped, crashed or was killed ends the run; its own \
             message says why)"
        ))
    }
}

/// Copies consecutive pieces of `flat` back into `tensors` (whatever their memory format).
fn unflatten(flat: &Tensor, tensors: &[&Tensor]) {
    let mut at = 0;
    for t in tensors {
        let n = t.numel() as i64;
        let mut dst = (*t).shallow_clone();
        dst.copy_(&flat.narrow(0, at, n).view(t.size().as_slice()));
        at += n;
    }
}

/// The step's generator draws for the whole global batch, keeping this rank's rows: every
/// rank makes the same draws, so a sample's noise is the same at any world size.
struct RowsOf<'a> {
    rows: &'a Tensor,
    global: i64,
}

impl RowsOf<'_> {
    fn global_shape(&self, shape: &[i64]) -> Vec<i64> {
        let mut s = shape.to_vec();
        s[0] = self.global;
        s
    }
}

impl NoiseSource for RowsOf<'_> {
    fn uniform(&mut self, shape: &[i64], device: Device) -> Tensor {
        TorchRng
            .uniform(&self.global_shape(shape), device)
            .index_select(0, self.rows)
    }

    fn normal(&mut self, shape: &[i64], device: Device) -> Tensor {
        TorchRng
            .normal(&self.global_shape(shape), device)
            .index_select(0, self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn launch(vars: &[(&str, &str)]) -> std::result::Result<Option<Launch>, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Launch::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn torchrun_and_srun_environments() {
        assert_eq!(launch(&[]).unwrap(), None);
        let t = launch(&[
            ("WORLD_SIZE", "8"),
            ("RANK", "5"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "node0"),
            ("MASTER_PORT", "29500"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("TORCHELASTIC_RESTART_COUNT", "2"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((t.rank, t.world, t.local_rank), (5, 8, 1));
        assert_eq!((t.master_addr.as_str(), t.master_port), ("node0", 29500));
        assert!(t.agent_store);
        assert_eq!(t.attempt, 2);
        let s = launch(&[
            ("SLURM_STEP_NUM_TASKS", "4"),
            ("SLURM_PROCID", "3"),
            ("SLURM_LOCALID", "3"),
            ("MASTER_ADDR", "gpu01"),
            ("MASTER_PORT", "12345"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (s.rank, s.world, s.local_rank, s.agent_store),
            (3, 4, 3, false)
        );
        // One srun task, or a batch script: one process.
        assert_eq!(
            launch(&[("SLURM_STEP_NUM_TASKS", "1"), ("SLURM_PROCID", "0")]).unwrap(),
            None
        );
    }

    #[test]
    fn a_launched_rank_takes_its_gpu_and_the_backend_of_its_device() {
        let l = Launch {
            rank: 5,
            world: 8,
            local_rank: 1,
            master_addr: "node0".into(),
            master_port: 29500,
            agent_store: true,
            attempt: 0,
        };
        let t = Duration::from_secs(9);
        let mut device = Device::Cuda(0);
        let d = DistOptions::for_launch(l.clone(), None, t, &mut device, false);
        assert_eq!(
            (device, d.backend, d.timeout),
            (Device::Cuda(1), Backend::Nccl, t)
        );
        // `cuda:0` typed by the user stays; an explicit backend wins.
        let mut device = Device::Cuda(0);
        let d = DistOptions::for_launch(l.clone(), Some(Backend::Gloo), t, &mut device, true);
        assert_eq!((device, d.backend), (Device::Cuda(0), Backend::Gloo));
        let mut device = Device::Cpu;
        let d = DistOptions::for_launch(l, None, t, &mut device, false);
        assert_eq!((device, d.backend), (Device::Cpu, Backend::Gloo));
    }

    #[test]
    fn a_broken_launch_environment_is_named() {
        let e = launch(&[("SLURM_STEP_NUM_TASKS", "2"), ("SLURM_PROCID", "0")]).unwrap_err();
        assert!(e.contains("MASTER_ADDR"), "{e}");
        let e = launch(&[
            ("WORLD_SIZE", "2"),
            ("RANK", "2"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "1"),
        ])
        .unwrap_err();
        assert!(e.contains("rank 2 of a world of 2"), "{e}");
        let e = launch(&[
            ("WORLD_SIZE", "2"),
            ("RANK", "0"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "http"),
        ])
        .unwrap_err();
        assert!(e.contains("MASTER_PORT"), "{e}");
        assert!(launch(&[("WORLD_SIZE", "two")])
            .unwrap_err()
            .contains("WORLD_SIZE"));
    }
}
