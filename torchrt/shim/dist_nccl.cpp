// The NCCL process group for dist.cpp, which uses it only as a c10d::Backend. Compiled by
// torchrt/build.rs, with dist.cpp's flags, only when the libtorch has libtorch_cuda.so (which
// has the class); otherwise dist.cpp refuses NCCL.
//
// ProcessGroupNCCL.hpp cannot be included: through c10/cuda it includes cuda_runtime.h, which
// includes crt/host_config.h, and the CUDA headers of the wheel's dependencies have no crt/ (it
// ships with the compiler). Nor is libtorch_cuda.so linked: ncsn-torch would then NEED it
// directly and no longer load with a CPU-only libtorch of the same version (the front-end's
// src/libtorch.rs accepts any directory with libtorch_cpu, libtorch and c10). So the two
// constructors are looked up when a group is made, by their mangled names, among the libraries
// already loaded (a CUDA libtorch.so loads libtorch_cuda.so):
//   c10d::ProcessGroupNCCL::Options::Options(bool)
//   c10d::ProcessGroupNCCL::ProcessGroupNCCL(intrusive_ptr<Store>, int, int,
//                                            intrusive_ptr<ProcessGroupNCCL::Options>)
// and called as the Itanium C++ ABI calls a complete-object constructor: a plain function whose
// first argument is `this`; an intrusive_ptr argument (non-trivial to copy) goes by address of
// a temporary that the caller destroys, whatever its pointee type, so intrusive_ptr<Backend::
// Options> stands for intrusive_ptr<ProcessGroupNCCL::Options> (one pointer to the same object:
// Options' only base is Backend::Options, at offset 0, as Backend is ProcessGroupNCCL's).
// As with Gloo (see the ABI note in dist.cpp), both objects are built in raw blocks larger than
// them (ncsn_dist::in_block), used only through their real bases (Backend::Options' timeout;
// c10d::Backend's virtual interface, so `work->wait()` is WorkNCCL's: the current CUDA stream
// waits for NCCL's, the host does not) and released through libtorch's virtual destructors.
// dist.cpp's check_group then asks the group, through Backend, for its name ("nccl"), rank,
// size and timeout.

#include <c10/core/DeviceType.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>

#include <dlfcn.h>

#include <chrono>
#include <cstdint>
#include <utility>

#include "dist_abi.h"

namespace ncsn_dist {

namespace {

using OptionsPtr = c10::intrusive_ptr<c10d::Backend::Options>;
using OptionsCtor = void (*)(void *self, bool is_high_priority_stream);
using GroupCtor = void (*)(void *self, StorePtr store, int rank, int size, OptionsPtr options);

constexpr const char *kOptionsCtor = "_ZN4c10d16ProcessGroupNCCL7OptionsC1Eb";
constexpr const char *kGroupCtor =
    "_ZN4c10d16ProcessGroupNCCLC1EN3c1013intrusive_ptrINS_5StoreENS1_6detail34intrusive_target_"
    "default_null_typeIS3_EEEEiiNS2_INS0_7OptionsENS5_IS8_EEEE";

// The real Options are a few hundred bytes (an ncclConfig_t, a parent group, a rank list).
constexpr std::size_t kOptionsBlock = 16 * 1024;

template <typename F>
F loaded(const char *symbol) {
  void *f = dlsym(RTLD_DEFAULT, symbol);
  TORCH_CHECK(f != nullptr,
              "the NCCL process group needs a libtorch with CUDA, and the one loaded has no "
              "ProcessGroupNCCL (libtorch_cuda.so is not loaded)");
  return reinterpret_cast<F>(f);
}

}  // namespace

GroupPtr nccl_group(const StorePtr &store, int rank, int world, int64_t timeout_ms) {
  auto make_options = loaded<OptionsCtor>(kOptionsCtor);
  auto make_group = loaded<GroupCtor>(kGroupCtor);
  bool gpu = c10::impl::hasDeviceGuardImpl(c10::DeviceType::CUDA) &&
             c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->deviceCount() > 0;
  TORCH_CHECK(gpu, "the NCCL process group needs a CUDA GPU, and this machine shows none");
  OptionsPtr options =
      in_block<c10d::Backend::Options>(kOptionsBlock, "ProcessGroupNCCL::Options", [&](void *at) {
        make_options(at, /*is_high_priority_stream=*/false);
        return static_cast<c10d::Backend::Options *>(at);
      });
  // The collectives' timeout: c10d's watchdog aborts one that runs longer.
  options->timeout = std::chrono::milliseconds(timeout_ms);
  return in_block<c10d::Backend>(kGroupBlock, "ProcessGroupNCCL", [&](void *at) {
    make_group(at, store, rank, world, std::move(options));
    return static_cast<c10d::Backend *>(at);
  });
}

}  // namespace ncsn_dist
