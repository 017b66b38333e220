//! What `ncsn doctor` reports: the libtorch this build links, and the devices it can use.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tch::{Device, Kind, Tensor};

/// tch's version; must pair with libtorch [`EXPECTED_LIBTORCH`] (tch 0.24 ↔ PyTorch 2.11.0).
pub const TCH_VERSION: &str = "0.24.0";
pub const EXPECTED_LIBTORCH: &str = "2.11.0";

pub struct Report {
    pub ncsn_version: &'static str,
    /// The directory this build was linked against.
    pub libtorch_lib: Option<PathBuf>,
    /// The directory this process loaded libtorch from (`/proc/self/maps`).
    pub libtorch_loaded: Option<PathBuf>,
    /// How the caller found it, when it says (`ncsn` tells `ncsn-torch`).
    pub libtorch_found: Option<String>,
    /// Read from the torch package's `version.py` beside the lib directory (pip layout) or a
    /// libtorch archive's `build-version`, of the loaded libtorch (else the linked one).
    pub libtorch_version: Option<String>,
    pub cpu_threads: i64,
    pub cuda_available: bool,
    pub cuda_devices: i64,
    pub cudnn_available: bool,
    /// Device names, from nvidia-smi when it is installed (libtorch's C API has no name query).
    pub gpu_names: Vec<String>,
    /// This build can start c10d's NCCL process group (libtorch with CUDA at build time).
    pub nccl_built: bool,
}

impl Report {
    pub fn gather() -> Self {
        let libtorch_lib = option_env!("NCSN_LIBTORCH_LIB").map(PathBuf::from);
        let libtorch_loaded = loaded_from("libtorch_cpu.so");
        let libtorch_version = libtorch_loaded
            .as_deref()
            .or(libtorch_lib.as_deref())
            .and_then(version_beside);
        let cuda_available = tch::Cuda::is_available();
        Self {
            ncsn_version: env!("CARGO_PKG_VERSION"),
            libtorch_lib,
            libtorch_loaded,
            libtorch_found: None,
            libtorch_version,
            cpu_threads: tch::get_num_threads() as i64,
            cuda_available,
            cuda_devices: if cuda_available {
                tch::Cuda::device_count()
            } else {
                0
            },
            cudnn_available: tch::Cuda::cudnn_is_available(),
            gpu_names: nvidia_smi_names(),
            nccl_built: crate::dist::nccl_built(),
        }
    }

    /// CPU and every CUDA device.
    pub fn devices(&self) -> Vec<Device> {
        std::iter::once(Device::Cpu)
            .chain((0..self.cuda_devices).map(|i| Device::Cuda(i as usize)))
            .collect()
    }
}

/// The directory of the first mapping of a library named `file`, as the loader opened it.
fn loaded_from(file: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.find(" /").map(|at| Path::new(&l[at + 1..])))
        .find(|p| p.file_name().is_some_and(|n| n == file))
        .and_then(|p| p.parent().map(Path::to_path_buf))
}

/// libtorch's version from beside its `lib/`: a torch package's `version.py`, a libtorch
/// archive's `build-version`.
fn version_beside(lib: &Path) -> Option<String> {
    let root = lib.join("..");
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        return text
            .lines()
            .find_map(|l| l.strip_prefix("__version__ = "))
            .map(|v| v.trim().trim_matches(['\'', '"']).to_string());
    }
    let text = std::fs::read_to_string(root.join("build-version")).ok()?;
    Some(text.trim().to_string()).filter(|v| !v.is_empty())
}

fn nvidia_smi_names() -> Vec<String> {
    std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name,memory.total", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_unknown = |o: Option<String>| o.unwrap_or_else(|| "unknown".into());
        writeln!(f, "ncsn      {}", self.ncsn_version)?;
        writeln!(
            f,
            "tch       {TCH_VERSION} (expects libtorch {EXPECTED_LIBTORCH})"
        )?;
        let version = or_unknown(self.libtorch_version.clone());
        let warn = match &self.libtorch_version {
            Some(v) if !v.starts_with(EXPECTED_LIBTORCH) => "  <- MISMATCH: rerun scripts/setup.sh",
            _ => "",
        };
        writeln!(f, "libtorch  {version}{warn}")?;
        let shown = |p: &Option<PathBuf>| or_unknown(p.as_ref().map(|p| p.display().to_string()));
        writeln!(f, "  loaded  {}", shown(&self.libtorch_loaded))?;
        if let Some(how) = &self.libtorch_found {
            writeln!(f, "  found   {how}")?;
        }
        writeln!(f, "  linked  {} (at build time)", shown(&self.libtorch_lib))?;
        writeln!(f, "cpu       {} threads", self.cpu_threads)?;
        writeln!(
            f,
            "cuda      {}",
            if self.cuda_available {
                format!("available, {} device(s)", self.cuda_devices)
            } else {
                "not available (training runs on CPU)".into()
            }
        )?;
        for (i, name) in self.gpu_names.iter().enumerate() {
            writeln!(f, "  cuda:{i}  {name}")?;
        }
        writeln!(
            f,
            "cudnn     {}",
            if self.cudnn_available {
                "available"
            } else {
                "not available"
            }
        )?;
        // What `ncsn train` under torchrun or srun can sum gradients with (c10d's backends).
        let nccl = match (self.nccl_built, self.cuda_available) {
            (true, true) => "nccl (GPUs)",
            (true, false) => "nccl (built; needs a GPU)",
            (false, _) => "no nccl (this libtorch has no CUDA)",
        };
        writeln!(f, "parallel  gloo (CPU), {nccl}")
    }
}

/// A 256×256 matmul on `device`, checked against the CPU result; returns its time.
pub fn smoke_matmul(device: Device) -> Result<Duration, tch::TchError> {
    let a = Tensor::f_randn([256, 256], (Kind::Float, Device::Cpu))?;
    let want = a.f_matmul(&a)?;
    let on = a.f_to_device(device)?;
    let start = Instant::now();
    let got = on.f_matmul(&on)?.f_to_device(Device::Cpu)?;
    let took = start.elapsed();
    let err = f64::try_from(got.f_sub(&want)?.f_abs()?.f_max()?)?;
    if err > 1e-2 {
        return Err(tch::TchError::Kind(format!(
            "{device:?}: matmul differs from CPU by {err}"
        )));
    }
    Ok(took)
}

/// A one-process c10d group of `backend` on `device` (a TCPStore on a free loopback port):
/// an all-reduce and a broadcast, checked; returns the all-reduce's time. Proves that the
/// collectives `ncsn train` uses under torchrun load and run on this machine (NCCL: its
/// communicator on this GPU).
pub fn smoke_collective(
    backend: crate::dist::Backend,
    device: Device,
) -> Result<Duration, crate::dist::DistError> {
    use crate::dist::{free_loopback_port, DistError, ProcessGroup, Store};
    let fail = |e: tch::TchError| DistError(e.to_string());
    let port = free_loopback_port()?;
    let timeout = Duration::from_secs(60);
    let store = Store::tcp("127.0.0.1", port, 1, true, timeout)?;
    let group = ProcessGroup::new(backend, &store, 0, 1, timeout)?;
    let mut t = Tensor::f_arange(8, (Kind::Float, device)).map_err(fail)?;
    let start = Instant::now();
    group.all_reduce_sum(&mut t)?;
    group.broadcast(&mut t, 0)?;
    let got = Vec::<f32>::try_from(t.f_to_device(Device::Cpu).map_err(fail)?).map_err(fail)?;
    let took = start.elapsed();
    if got != (0..8).map(|i| i as f32).collect::<Vec<_>>() {
        return Err(DistError(format!(
            "{backend} on {device:?}: a one-rank all-reduce gave {got:?}"
        )));
    }
    Ok(took)
}
