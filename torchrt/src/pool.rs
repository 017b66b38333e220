//! `max_pool2d` with a k×k window, stride 1 and padding k/2 (the shape NCSNv2's CRP blocks
//! pool with, k = 5), over `shim/pool.cpp`: on the CPU in float32 a two-pass kernel that gives
//! libtorch's values, indices and gradients bit for bit at a fraction of its time (issue 15);
//! anything else is libtorch's `max_pool2d` itself.

use std::ffi::c_char;

use tch::Tensor;
use torch_sys::C_tensor;

use crate::accel::{tensor_out, AccelError};

extern "C" {
    fn ncsn_pool_max_same(x: *const C_tensor, k: i64, out: *mut *mut C_tensor) -> *mut c_char;
    fn ncsn_pool_max_same_with_indices(
        x: *const C_tensor,
        k: i64,
        out: *mut *mut C_tensor,
        indices: *mut *mut C_tensor,
    ) -> *mut c_char;
}

/// `x.max_pool2d([k, k], [1, 1], [k / 2, k / 2], [1, 1], false)` for an odd `k`, differentiable
/// (the backward is libtorch's `max_pool2d_with_indices_backward`). The output has `x`'s shape.
pub fn max_pool2d_same(x: &Tensor, k: i64) -> Result<Tensor, AccelError> {
    tensor_out(|out| unsafe { ncsn_pool_max_same(x.as_ptr(), k, out) })
}

/// The fast kernel's output and int64 indices (flat `h·W + w` per plane, as
/// `max_pool2d_with_indices` returns them), without autograd. For tests and benchmarks; errors
/// on an input the fast path does not take (not a contiguous 4-d float32 CPU tensor, even k).
pub fn max_pool2d_same_with_indices(x: &Tensor, k: i64) -> Result<(Tensor, Tensor), AccelError> {
    let mut indices: *mut C_tensor = std::ptr::null_mut();
    let out = tensor_out(|out| unsafe {
        ncsn_pool_max_same_with_indices(x.as_ptr(), k, out, &mut indices)
    })?;
    // SAFETY: on success the shim stored a second fresh `at::Tensor*`, ours from here on.
    Ok((out, unsafe { Tensor::from_ptr(indices) }))
}
