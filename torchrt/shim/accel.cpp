// The libtorch switches that tch 0.24 does not expose (issue 16, part 1): TF32 and cuDNN
// benchmark, autocast with a chosen dtype, channels-last memory format, and a host→device copy
// on a side stream. Compiled by torchrt/build.rs with the flags torch-sys uses for its own shim
// and wrapped by torchrt/src/accel.rs; nothing else calls these functions.
//
// Tensors cross as tch's `C_tensor`, which is a `torch::Tensor*` (torch-sys's torch_api.h):
// borrowed in, and handed out as a fresh `new at::Tensor` that the Rust side owns (tch frees it
// with `delete`). No C++ exception crosses the boundary: each function catches and returns a
// malloc'ed message (NULL on success), which Rust frees with `ncsn_accel_free`.
//
// Streams and events go through c10's device-generic interfaces (c10::Stream, c10::Event,
// the CUDA DeviceGuardImpl that libtorch_cuda registers), so this file needs no CUDA headers and
// compiles against any libtorch; on a build or machine without CUDA those calls are refused at
// run time, and the Rust side never makes them there.

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/Event.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <cstdlib>
#include <utility>

#include "guarded.h"

namespace {

using ncsn_shim::message;

template <typename F>
char *guarded(F &&f) {
  return ncsn_shim::guarded("accel", std::forward<F>(f));
}

// 0 = CPU, 1 = CUDA: the two device types ncsn trains on.
at::DeviceType device_type(int d) { return d == 1 ? at::kCUDA : at::kCPU; }

// 0 = bfloat16, 1 = float16, 2 = float32.
at::ScalarType scalar_type(int s) {
  switch (s) {
    case 0: return at::kBFloat16;
    case 1: return at::kHalf;
    default: return at::kFloat;
  }
}

int scalar_code(at::ScalarType s) {
  if (s == at::kBFloat16) return 0;
  if (s == at::kHalf) return 1;
  return 2;
}

}  // namespace

extern "C" {

void ncsn_accel_free(char *message) { std::free(message); }

char *ncsn_accel_set_tf32(bool matmul, bool cudnn) {
  return guarded([&] {
    at::globalContext().setAllowTF32CuBLAS(matmul);
    at::globalContext().setAllowTF32CuDNN(cudnn);
  });
}

// torch.set_flush_denormal: FTZ and DAZ in this thread's MXCSR; false where unsupported.
bool ncsn_accel_set_flush_denormal(bool on) { return at::globalContext().setFlushDenormal(on); }

char *ncsn_accel_set_cudnn_benchmark(bool on) {
  return guarded([&] { at::globalContext().setBenchmarkCuDNN(on); });
}

char *ncsn_accel_backend_flags(bool *tf32_matmul, bool *tf32_cudnn, bool *benchmark) {
  return guarded([&] {
    *tf32_matmul = at::globalContext().allowTF32CuBLAS();
    *tf32_cudnn = at::globalContext().allowTF32CuDNN();
    *benchmark = at::globalContext().benchmarkCuDNN();
  });
}

// Python's `torch.autocast.__enter__`: remember the state, switch, count the nesting.
char *ncsn_accel_autocast_enter(int device, int dtype, bool *was_enabled, int *was_dtype) {
  return guarded([&] {
    auto t = device_type(device);
    *was_enabled = at::autocast::is_autocast_enabled(t);
    *was_dtype = scalar_code(at::autocast::get_autocast_dtype(t));
    at::autocast::set_autocast_dtype(t, scalar_type(dtype));
    at::autocast::set_autocast_enabled(t, true);
    at::autocast::increment_nesting();
  });
}

// `__exit__`: the outermost exit drops the cache of low-precision weight copies.
char *ncsn_accel_autocast_exit(int device, bool was_enabled, int was_dtype) {
  return guarded([&] {
    auto t = device_type(device);
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(t, was_enabled);
    at::autocast::set_autocast_dtype(t, scalar_type(was_dtype));
  });
}

bool ncsn_accel_autocast_enabled(int device) {
  try {
    return at::autocast::is_autocast_enabled(device_type(device));
  } catch (...) {
    return false;
  }
}

// `tensor.contiguous(memory_format)`: 1 = channels-last, 0 = the default (row-major) layout.
char *ncsn_accel_contiguous(const at::Tensor *t, int channels_last, at::Tensor **out) {
  return guarded([&] {
    auto f = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    *out = new at::Tensor(t->contiguous(f));
  });
}

bool ncsn_accel_is_channels_last(const at::Tensor *t) {
  try {
    return t->dim() == 4 && t->is_contiguous(at::MemoryFormat::ChannelsLast);
  } catch (...) {
    return false;
  }
}

// Copies `src` (pinned host memory) to CUDA device `index` on a stream from the pool, so the
// copy overlaps the kernels already queued on the current stream; the current stream then waits
// for it on the GPU (no host wait), and the result is recorded as used there so the caching
// allocator does not hand its memory to the side stream while the current one still reads it.
char *ncsn_accel_copy_on_side_stream(const at::Tensor *src, int index, at::Tensor **out) {
  return guarded([&] {
    c10::Device dev(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(index));
    const auto *impl = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA);
    c10::Stream current = impl->getStream(dev);
    c10::Stream side = impl->getStreamFromGlobalPool(dev, false);
    at::Tensor result;
    {
      c10::StreamGuard on_side(side);
      result = src->to(dev, src->scalar_type(), /*non_blocking=*/true, /*copy=*/false);
    }
    c10::Event copied(c10::DeviceType::CUDA);
    copied.record(side);
    copied.block(current);
    result.record_stream(current);
    *out = new at::Tensor(result);
  });
}

// PyTorch's in-place addcmul_/addcdiv_ with their `value` (tch's have none): the kernels compute
// self + value·t1·t2 and self + value·t1/t2 in one pass, with no temporary for value·t1.
char *ncsn_accel_addcmul_(at::Tensor *self, const at::Tensor *t1, const at::Tensor *t2,
                          double value) {
  return guarded([&] { self->addcmul_(*t1, *t2, value); });
}

char *ncsn_accel_addcdiv_(at::Tensor *self, const at::Tensor *t1, const at::Tensor *t2,
                          double value) {
  return guarded([&] { self->addcdiv_(*t1, *t2, value); });
}

// Drops a tensor's gradient (`zero_grad(set_to_none=True)`, PyTorch's default): the next
// backward writes a fresh gradient instead of zeroing the old one and adding into it.
char *ncsn_accel_clear_grad(at::Tensor *t) {
  return guarded([&] { t->mutable_grad().reset(); });
}

// Makes CUDA device `index` the calling thread's current device (torch.cuda.set_device): a
// data-parallel rank's CUDA context, default stream and NCCL communicator then live on its own
// GPU instead of every rank also creating a context on GPU 0.
char *ncsn_accel_set_cuda_device(int index) {
  return guarded([&] {
    const auto *impl = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA);
    impl->setDevice(c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(index)));
  });
}

}  // extern "C"
