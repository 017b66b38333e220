//! The libtorch switches that tch 0.24 does not expose, for training at full speed on one GPU
//! (issue 16): TF32 and cuDNN's autotuner ([`set_tf32`], [`set_cudnn_benchmark`]), autocast
//! with a chosen dtype ([`Autocast`]), channels-last tensors ([`to_channels_last`]) and a
//! host→device copy on a side stream ([`copy_on_side_stream`]).
//!
//! This module and `shim/accel.cpp` are the only place ncsn calls libtorch's C++ API itself;
//! everything else goes through tch. Tensors cross as tch's `C_tensor` (a `torch::Tensor*`),
//! as in torch-sys's own shim, and C++ exceptions come back as [`AccelError`].

use std::ffi::{c_char, c_int, CStr};
use std::marker::PhantomData;

use tch::{Device, Tensor};
use torch_sys::C_tensor;

extern "C" {
    fn ncsn_accel_free(message: *mut c_char);
    fn ncsn_accel_set_tf32(matmul: bool, cudnn: bool) -> *mut c_char;
    fn ncsn_accel_set_cudnn_benchmark(on: bool) -> *mut c_char;
    fn ncsn_accel_set_flush_denormal(on: bool) -> bool;
    fn ncsn_accel_set_cuda_device(index: c_int) -> *mut c_char;
    fn ncsn_accel_addcmul_(
        t: *mut C_tensor,
        t1: *const C_tensor,
        t2: *const C_tensor,
        value: f64,
    ) -> *mut c_char;
    fn ncsn_accel_addcdiv_(
        t: *mut C_tensor,
        t1: *const C_tensor,
        t2: *const C_tensor,
        value: f64,
    ) -> *mut c_char;
    fn ncsn_accel_clear_grad(t: *mut C_tensor) -> *mut c_char;
    fn ncsn_accel_backend_flags(
        tf32_matmul: *mut bool,
        tf32_cudnn: *mut bool,
        benchmark: *mut bool,
    ) -> *mut c_char;
    fn ncsn_accel_autocast_enter(
        device: c_int,
        dtype: c_int,
        was_enabled: *mut bool,
        was_dtype: *mut c_int,
    ) -> *mut c_char;
    fn ncsn_accel_autocast_exit(device: c_int, was_enabled: bool, was_dtype: c_int) -> *mut c_char;
    fn ncsn_accel_autocast_enabled(device: c_int) -> bool;
    fn ncsn_accel_contiguous(
        t: *const C_tensor,
        channels_last: c_int,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn ncsn_accel_is_channels_last(t: *const C_tensor) -> bool;
    fn ncsn_accel_copy_on_side_stream(
        src: *const C_tensor,
        index: c_int,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
}

/// A libtorch call of the shim failed; the message is libtorch's, without its backtrace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("libtorch: {0}")]
pub struct AccelError(pub String);

/// Turns the shim's error message (NULL: success) into a result, freeing it.
fn check(message: *mut c_char) -> Result<(), AccelError> {
    if message.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null return is a NUL-terminated string malloc'ed by the shim, ours to free.
    let text = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    unsafe { ncsn_accel_free(message) };
    Err(AccelError(text))
}

/// A tensor the shim allocated with `new at::Tensor`, owned from here on.
pub(crate) fn tensor_out(
    call: impl FnOnce(*mut *mut C_tensor) -> *mut c_char,
) -> Result<Tensor, AccelError> {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    check(call(&mut out))?;
    // SAFETY: on success the shim stored a fresh `at::Tensor*` that nothing else owns; tch's
    // Drop frees it the way torch-sys frees its own.
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// TF32 tensor cores for float32 matmuls (cuBLAS) and convolutions (cuDNN), process-wide.
/// Like `torch.backends.cuda.matmul.allow_tf32` and `torch.backends.cudnn.allow_tf32`; without
/// effect on the CPU.
pub fn set_tf32(matmul: bool, cudnn: bool) -> Result<(), AccelError> {
    check(unsafe { ncsn_accel_set_tf32(matmul, cudnn) })
}

/// cuDNN's autotuner (`torch.backends.cudnn.benchmark`): the fastest convolution algorithm per
/// input shape, timed on first use of the shape.
pub fn set_cudnn_benchmark(on: bool) -> Result<(), AccelError> {
    check(unsafe { ncsn_accel_set_cudnn_benchmark(on) })
}

/// Flush denormal floats to zero on the CPU (`torch.set_flush_denormal`: the FTZ and DAZ bits
/// of the calling thread's MXCSR). Threads inherit the setting when they are created, so call
/// it before the first parallel tensor operation starts libtorch's thread pool. Returns false
/// where the CPU has no such mode. Why: a denormal operand costs an x86 core a microcode
/// assist of ~100 cycles, and the backward pass of ELU on large negative inputs (σ up to
/// hundreds) makes many; flushing changes values only below 1.2e-38.
pub fn set_flush_denormal(on: bool) -> bool {
    // SAFETY: a plain call into the shim; it only changes this thread's FP control register.
    unsafe { ncsn_accel_set_flush_denormal(on) }
}

/// glibc gives freed blocks above its mmap threshold, and the top of its heap above the trim
/// threshold, back to the kernel. A network step frees and allocates the same 1-4 MB
/// activations again and again, so with the defaults the kernel maps them back in and zeroes
/// them every pass: 34 k page faults and 85 ms of system time per CIFAR-10 forward pass on the
/// CPU (BENCHMARKS.md, issue 15), against 3 k and 7 ms once blocks up to 32 MiB stay in the heap
/// and the heap is never trimmed, for ~130 MB more peak memory. No value changes. What
/// `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=...` does,
/// set before the first allocation of any size that matters.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's parameters; nothing is allocated yet that
    // depends on them.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}

/// `t ← t + value·t1·t2` in place, PyTorch's `addcmul_(t1, t2, value=value)`: one pass and no
/// temporary (tch's `addcmul_` has no `value`). Adam's second moment uses it.
pub fn addcmul_(t: &mut Tensor, t1: &Tensor, t2: &Tensor, value: f64) -> Result<(), AccelError> {
    check(unsafe { ncsn_accel_addcmul_(t.as_mut_ptr(), t1.as_ptr(), t2.as_ptr(), value) })
}

/// `t ← t + value·t1/t2` in place, PyTorch's `addcdiv_(t1, t2, value=value)`.
pub fn addcdiv_(t: &mut Tensor, t1: &Tensor, t2: &Tensor, value: f64) -> Result<(), AccelError> {
    check(unsafe { ncsn_accel_addcdiv_(t.as_mut_ptr(), t1.as_ptr(), t2.as_ptr(), value) })
}

/// Drops `t`'s gradient, as PyTorch's `zero_grad()` does by default (`set_to_none=True`): the
/// next backward stores its gradient instead of zeroing the old one and adding into it (one
/// pass over every parameter less, per step).
pub fn clear_grad(t: &mut Tensor) -> Result<(), AccelError> {
    check(unsafe { ncsn_accel_clear_grad(t.as_mut_ptr()) })
}

/// Makes `cuda:index` the current CUDA device of the calling thread, like
/// `torch.cuda.set_device`: what a data-parallel rank does first, so that its CUDA context and
/// its NCCL communicator live on its own GPU rather than also on GPU 0. Errors where libtorch
/// has no CUDA or the GPU does not exist.
pub fn set_cuda_device(index: usize) -> Result<(), AccelError> {
    let index = c_int::try_from(index).map_err(|_| AccelError(format!("no GPU {index}")))?;
    check(unsafe { ncsn_accel_set_cuda_device(index) })
}

/// The process-wide switches as libtorch holds them now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendFlags {
    pub tf32_matmul: bool,
    pub tf32_cudnn: bool,
    pub cudnn_benchmark: bool,
}

pub fn backend_flags() -> Result<BackendFlags, AccelError> {
    let (mut m, mut c, mut b) = (false, false, false);
    check(unsafe { ncsn_accel_backend_flags(&mut m, &mut c, &mut b) })?;
    Ok(BackendFlags {
        tf32_matmul: m,
        tf32_cudnn: c,
        cudnn_benchmark: b,
    })
}

/// The reduced precision an [`Autocast`] region computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LowPrecision {
    BFloat16,
    Float16,
}

impl LowPrecision {
    fn code(self) -> c_int {
        match self {
            LowPrecision::BFloat16 => 0,
            LowPrecision::Float16 => 1,
        }
    }
}

fn device_code(device: Device) -> Result<c_int, AccelError> {
    match device {
        Device::Cpu => Ok(0),
        Device::Cuda(_) => Ok(1),
        other => Err(AccelError(format!(
            "autocast on {other:?}: only cpu and cuda"
        ))),
    }
}

/// Autocast on `device`'s type for as long as the guard lives (`with torch.autocast(device,
/// dtype)`): convolutions and matmuls run in the low precision, the ops autocast keeps in
/// float32 stay there. Autocast is per thread, so the guard is neither `Send` nor `Sync`;
/// guards nest, and the outermost one's drop clears autocast's cache of weight copies.
#[must_use = "autocast is on only while the guard lives"]
pub struct Autocast {
    device: c_int,
    was_enabled: bool,
    was_dtype: c_int,
    _this_thread: PhantomData<*const ()>,
}

impl Autocast {
    pub fn new(device: Device, dtype: LowPrecision) -> Result<Self, AccelError> {
        let device = device_code(device)?;
        let (mut was_enabled, mut was_dtype) = (false, 0);
        check(unsafe {
            ncsn_accel_autocast_enter(device, dtype.code(), &mut was_enabled, &mut was_dtype)
        })?;
        Ok(Self {
            device,
            was_enabled,
            was_dtype,
            _this_thread: PhantomData,
        })
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        // Restoring two thread-local flags does not fail; a message would be a libtorch bug.
        let restored = check(unsafe {
            ncsn_accel_autocast_exit(self.device, self.was_enabled, self.was_dtype)
        });
        debug_assert!(restored.is_ok(), "{restored:?}");
    }
}

/// Whether autocast is on for `device`'s type in this thread.
pub fn autocast_enabled(device: Device) -> bool {
    device_code(device).is_ok_and(|d| unsafe { ncsn_accel_autocast_enabled(d) })
}

/// `t.contiguous(memory_format=torch.channels_last)`: the same NCHW tensor with channels
/// innermost in memory (NHWC order), what cuDNN's fastest convolutions read. The values and
/// the shape are unchanged; a tensor already in that layout is returned as is (shared).
pub fn to_channels_last(t: &Tensor) -> Result<Tensor, AccelError> {
    tensor_out(|out| unsafe { ncsn_accel_contiguous(t.as_ptr(), 1, out) })
}

/// `t.contiguous()` in the default row-major layout (tch's `contiguous`, fallible).
pub fn to_contiguous(t: &Tensor) -> Result<Tensor, AccelError> {
    tensor_out(|out| unsafe { ncsn_accel_contiguous(t.as_ptr(), 0, out) })
}

/// Whether `t` is a 4-d tensor laid out channels-last.
pub fn is_channels_last(t: &Tensor) -> bool {
    unsafe { ncsn_accel_is_channels_last(t.as_ptr()) }
}

/// `src` on `device`. To a GPU, from host memory: the copy is issued on a stream of libtorch's
/// pool so it overlaps the kernels already queued on the current stream, which then waits for
/// it on the GPU (the host never waits). `src` should be pinned (`pin_memory`) for the copy to
/// be asynchronous. Anything else is a plain `to_device`.
pub fn copy_on_side_stream(src: &Tensor, device: Device) -> Result<Tensor, AccelError> {
    match device {
        Device::Cuda(index) if src.device() == Device::Cpu => tensor_out(|out| unsafe {
            ncsn_accel_copy_on_side_stream(src.as_ptr(), index as c_int, out)
        }),
        _ => Ok(src.to_device(device)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushing_denormals_zeroes_them_in_this_thread_and_threads_it_starts() {
        // Own threads: the mode belongs to the thread that sets it (and those it creates).
        let doubled = |flush: bool| {
            std::thread::spawn(move || {
                assert!(set_flush_denormal(flush) || !flush, "x86-64 has FTZ/DAZ");
                let here = (Tensor::from_slice(&[1e-39f32]) * 2.0).double_value(&[0]);
                let child = std::thread::spawn(|| {
                    (Tensor::from_slice(&[1e-39f32]) * 2.0).double_value(&[0])
                })
                .join()
                .unwrap();
                (here, child)
            })
            .join()
            .unwrap()
        };
        let kept = doubled(false);
        assert!(kept.0 > 1.9e-39 && kept.1 > 1.9e-39, "{kept:?}");
        assert_eq!(doubled(true), (0.0, 0.0));
    }
    use tch::Kind;

    #[test]
    fn channels_last_keeps_shape_and_values() {
        let t = Tensor::arange(2 * 3 * 4 * 5, (Kind::Float, Device::Cpu)).view([2, 3, 4, 5]);
        assert!(!is_channels_last(&t));
        let cl = to_channels_last(&t).unwrap();
        assert!(is_channels_last(&cl));
        assert_eq!(cl.size(), t.size());
        assert_eq!(cl.stride(), vec![60, 1, 15, 3]);
        assert!(cl.equal(&t));
        let back = to_contiguous(&cl).unwrap();
        assert!(!is_channels_last(&back) && back.is_contiguous() && back.equal(&t));
    }

    #[test]
    fn a_refused_layout_is_an_error_not_an_abort() {
        let t = Tensor::zeros([3, 4], (Kind::Float, Device::Cpu));
        let e = to_channels_last(&t).unwrap_err();
        assert!(e.0.contains("rank 4"), "{e}");
        assert!(!is_channels_last(&t));
    }

    #[test]
    fn autocast_guards_nest_and_restore() {
        assert!(!autocast_enabled(Device::Cpu));
        {
            let _outer = Autocast::new(Device::Cpu, LowPrecision::BFloat16).unwrap();
            assert!(autocast_enabled(Device::Cpu));
            let a = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
            assert_eq!(a.matmul(&a).kind(), Kind::BFloat16);
            {
                let _inner = Autocast::new(Device::Cpu, LowPrecision::BFloat16).unwrap();
                assert!(autocast_enabled(Device::Cpu));
            }
            assert!(
                autocast_enabled(Device::Cpu),
                "the inner guard restores, not clears"
            );
        }
        assert!(!autocast_enabled(Device::Cpu));
        let a = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
    }

    #[test]
    fn backend_switches_read_back() {
        // Process-wide state: set, read, and put back what was there.
        let before = backend_flags().unwrap();
        set_tf32(true, false).unwrap();
        set_cudnn_benchmark(true).unwrap();
        let now = backend_flags().unwrap();
        assert!(now.tf32_matmul && !now.tf32_cudnn && now.cudnn_benchmark);
        set_tf32(before.tf32_matmul, before.tf32_cudnn).unwrap();
        set_cudnn_benchmark(before.cudnn_benchmark).unwrap();
        assert_eq!(backend_flags().unwrap(), before);
    }

    #[test]
    fn a_copy_to_the_cpu_is_a_plain_copy() {
        let t = Tensor::arange(6, (Kind::Uint8, Device::Cpu));
        assert!(copy_on_side_stream(&t, Device::Cpu).unwrap().equal(&t));
    }

    /// Runs only where libtorch sees a GPU.
    #[test]
    fn a_side_stream_copy_arrives_intact_on_a_gpu() {
        if !tch::Cuda::is_available() {
            return;
        }
        let t = Tensor::arange(1 << 20, (Kind::Int, Device::Cpu)).pin_memory(Device::Cuda(0));
        let g = copy_on_side_stream(&t, Device::Cuda(0)).unwrap();
        assert_eq!(g.device(), Device::Cuda(0));
        let sum = (&g * 2).sum(Kind::Int64).int64_value(&[]);
        assert_eq!(sum, (1i64 << 20) * ((1 << 20) - 1));
    }
}
