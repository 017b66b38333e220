//! How a run uses the device (issue 16, part 1; SPEC §10): bf16 autocast, channels-last
//! activations, TF32 and cuDNN's autotuner, and how often the host reads the device's values.
//! None of it changes what is computed beyond rounding (bf16, TF32) or at all (channels-last,
//! the reads). The libtorch calls themselves are `torchrt::accel`'s.
//!
//! The network runs the way [`Speed`] asks behind the [`ScoreModel`] interface
//! ([`Speed::wrap`]): its input in channels-last and its forward under autocast, its output
//! back to float32 in the default layout, so the loss (Eq. 2), Adam, the EMA and the Langevin
//! update stay float32 on float32 parameters, as in PyTorch's recipe for mixed precision.

use std::fmt;
use std::str::FromStr;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};
use torchrt::accel::{self, AccelError, Autocast, LowPrecision};

use crate::models::ScoreModel;

/// The precision of the network's forward (and so its backward).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Float32 throughout (TF32 on CUDA tensor cores when [`Speed::tf32`]).
    #[default]
    Fp32,
    /// Autocast to bfloat16: convolutions and matmuls in bf16, the ops autocast keeps in
    /// float32 there; parameters, gradients, the loss, Adam and the EMA stay float32.
    Bf16,
}

impl Precision {
    pub const NAMES: [&'static str; 2] = ["fp32", "bf16"];
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        })
    }
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(format!("{s:?}: expected fp32 or bf16")),
        }
    }
}

/// Steps between the host's reads of the device when [`Speed::sync_every`] is not set: on a
/// GPU the kernels of 100 steps queue up unread (a NaN is still named with its exact step);
/// on the CPU every op has finished when it returns, so reading each step costs nothing.
pub const SYNC_EVERY_CUDA: u64 = 100;

/// How a run uses its device; the defaults are what a user would choose (TF32 and the cuDNN
/// autotuner on, which only affect CUDA; bf16 and channels-last opt-in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Speed {
    pub precision: Precision,
    /// Channels-last activations and 4-d weights (cuDNN's fastest convolution layout).
    pub channels_last: bool,
    /// TF32 tensor cores for float32 matmuls and convolutions (CUDA; PyTorch's
    /// `allow_tf32` switches).
    pub tf32: bool,
    /// cuDNN's autotuner (`torch.backends.cudnn.benchmark`).
    pub cudnn_benchmark: bool,
    /// Steps between the host's reads of the loss (its finiteness check, the metrics and
    /// progress lines); `None`: 1 on the CPU, [`SYNC_EVERY_CUDA`] on a GPU.
    pub sync_every: Option<u64>,
}

impl Default for Speed {
    fn default() -> Self {
        Self {
            precision: Precision::Fp32,
            channels_last: false,
            tf32: true,
            cudnn_benchmark: true,
            sync_every: None,
        }
    }
}

impl Speed {
    /// Steps between the host's reads on `device` (at least 1).
    pub fn sync_interval(&self, device: Device) -> u64 {
        let auto = if device.is_cuda() { SYNC_EVERY_CUDA } else { 1 };
        self.sync_every.unwrap_or(auto).max(1)
    }

    /// Sets libtorch's process-wide switches for a run on `device`: TF32 and the autotuner
    /// on CUDA (left as they are on the CPU, where they do nothing).
    pub fn apply_backend(&self, device: Device) -> Result<(), AccelError> {
        if device.is_cuda() {
            accel::set_tf32(self.tf32, self.tf32)?;
            accel::set_cudnn_benchmark(self.cudnn_benchmark)?;
        }
        Ok(())
    }

    /// Whether [`Speed::wrap`] changes anything.
    fn changes_forward(&self) -> bool {
        self.channels_last || self.precision != Precision::Fp32
    }

    /// Converts the 4-d weights of `vs` to channels-last in place (once per run, so the
    /// convolutions never convert them per step); Adam's moments, made with `zeros_like`,
    /// follow. Checkpoints still hold them in the default layout (written `contiguous`).
    pub fn prepare_weights(&self, vs: &VarStore) -> Result<(), AccelError> {
        if !self.channels_last {
            return Ok(());
        }
        for (_, mut var) in vs.variables() {
            if var.dim() == 4 {
                let cl = accel::to_channels_last(&var)?;
                tch::no_grad(|| var.set_data(&cl));
            }
        }
        Ok(())
    }

    /// `model` run as this speed asks on `device`; the model itself when nothing changes.
    pub fn wrap(
        &self,
        model: Box<dyn ScoreModel>,
        device: Device,
    ) -> Result<Box<dyn ScoreModel>, AccelError> {
        if !self.changes_forward() {
            return Ok(model);
        }
        if !matches!(device, Device::Cpu | Device::Cuda(_)) {
            return Err(AccelError(format!(
                "--precision/--channels-last on {device:?}: only cpu and cuda"
            )));
        }
        Ok(Box::new(Fast {
            inner: model,
            device,
            autocast: (self.precision == Precision::Bf16).then_some(LowPrecision::BFloat16),
            channels_last: self.channels_last,
        }))
    }
}

/// A score network run in channels-last and/or under autocast, float32 and the default layout
/// at its boundary.
struct Fast {
    inner: Box<dyn ScoreModel>,
    device: Device,
    autocast: Option<LowPrecision>,
    channels_last: bool,
}

impl ScoreModel for Fast {
    fn forward(&self, x: &Tensor, y: &Tensor) -> Tensor {
        // Neither call can fail here: `wrap` admitted only CPU and CUDA, and x is NCHW.
        let x = if self.channels_last {
            accel::to_channels_last(x).expect("channels-last of an NCHW batch")
        } else {
            x.shallow_clone()
        };
        let out = match self.autocast {
            Some(dtype) => {
                let _autocast = Autocast::new(self.device, dtype).expect("autocast on cpu/cuda");
                self.inner.forward(&x, y)
            }
            None => self.inner.forward(&x, y),
        };
        let out = out.to_kind(Kind::Float);
        if self.channels_last {
            accel::to_contiguous(&out).expect("contiguous copy")
        } else {
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_names_round_trip() {
        for name in Precision::NAMES {
            assert_eq!(name.parse::<Precision>().unwrap().to_string(), name);
        }
        assert!("fp16"
            .parse::<Precision>()
            .unwrap_err()
            .contains("fp32 or bf16"));
    }

    #[test]
    fn reads_every_step_on_the_cpu_and_every_100_on_a_gpu_unless_told() {
        let mut s = Speed::default();
        assert_eq!(s.sync_interval(Device::Cpu), 1);
        assert_eq!(s.sync_interval(Device::Cuda(0)), SYNC_EVERY_CUDA);
        s.sync_every = Some(7);
        assert_eq!(s.sync_interval(Device::Cpu), 7);
        s.sync_every = Some(0);
        assert_eq!(s.sync_interval(Device::Cuda(0)), 1);
    }

    #[test]
    fn channels_last_weights_keep_their_values_and_the_store_sees_them() {
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().randn("w", &[4, 3, 3, 3], 0.0, 1.0);
        let b = vs.root().zeros("b", &[4]);
        let before = w.detach().copy();
        let s = Speed {
            channels_last: true,
            ..Speed::default()
        };
        s.prepare_weights(&vs).unwrap();
        let vars = vs.variables();
        assert!(accel::is_channels_last(&vars["w"]) && vars["w"].requires_grad());
        assert!(vars["w"].equal(&before) && vars["b"].equal(&b));
        // The variable handed out before the conversion is the same tensor.
        assert!(accel::is_channels_last(&w));
    }
}
