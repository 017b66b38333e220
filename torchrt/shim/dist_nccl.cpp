// The NCCL process group for dist.cpp, which uses it only as a c10d::Backend. Compiled by
// torchrt/build.rs, with the flags of dist.cpp, only when the libtorch has libtorch_cuda.so
// (which exports the class); otherwise dist.cpp refuses NCCL at run time.
//
// ProcessGroupNCCL.hpp cannot be included: through c10/cuda it includes cuda_runtime.h, which
// includes crt/host_config.h, and the CUDA headers of the wheel's dependencies have no crt/ (it
// ships with the compiler). So, as for ProcessGroupGloo in dist.cpp (whose ABI note applies
// here word for word), the class is declared with exactly the signatures libtorch_cuda.so
// exports, and neither its object nor its Options object is created with our sizeof:
//   c10d::ProcessGroupNCCL::Options::Options(bool)
//   c10d::ProcessGroupNCCL::ProcessGroupNCCL(intrusive_ptr<Store>, int, int,
//                                            intrusive_ptr<ProcessGroupNCCL::Options>)
// Both are placement-new'ed into raw blocks (ncsn_dist::in_block) and released through the
// library's virtual destructors. The only field touched is `timeout`, which lives in the real
// Backend::Options base; the other options keep the defaults their constructor gives them (as
// `ProcessGroupNCCL.Options()` in Python). Collectives go through Backend's virtual interface,
// so `work->wait()` is WorkNCCL's: the current CUDA stream waits for NCCL's, the host does not.

#include <c10/core/DeviceType.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>

#include <chrono>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "dist_abi.h"

namespace c10d {
class TORCH_API ProcessGroupNCCL : public Backend {
 public:
  struct Options : Backend::Options {
    explicit Options(bool is_high_priority_stream);
    ~Options() override;  // declared only: destroyed only virtually
  };
  ProcessGroupNCCL(c10::intrusive_ptr<Store> store, int rank, int size,
                   c10::intrusive_ptr<Options> options);
  ~ProcessGroupNCCL() override;
};
}  // namespace c10d

static_assert(std::is_polymorphic<c10d::ProcessGroupNCCL>::value &&
                  std::is_base_of<c10d::Backend, c10d::ProcessGroupNCCL>::value,
              "ProcessGroupNCCL is used only as a c10d::Backend");

namespace ncsn_dist {

// The real Options are a few hundred bytes (an ncclConfig_t, a parent group, a rank list).
constexpr std::size_t kOptionsBlock = 16 * 1024;

GroupPtr nccl_group(const StorePtr &store, int rank, int world, int64_t timeout_ms) {
  bool gpu = c10::impl::hasDeviceGuardImpl(c10::DeviceType::CUDA) &&
             c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->deviceCount() > 0;
  TORCH_CHECK(gpu, "the NCCL process group needs a CUDA GPU, and this machine shows none");
  using Options = c10d::ProcessGroupNCCL::Options;
  auto options = in_block<Options>(kOptionsBlock, "ProcessGroupNCCL::Options",
                                   [](void *at) { return new (at) Options(false); });
  // The collectives' timeout: c10d's watchdog aborts one that runs longer.
  static_cast<c10d::Backend::Options &>(*options).timeout = std::chrono::milliseconds(timeout_ms);
  return group_in_block<c10d::ProcessGroupNCCL>("ProcessGroupNCCL", [&](void *at) {
    return new (at) c10d::ProcessGroupNCCL(store, rank, world, std::move(options));
  });
}

}  // namespace ncsn_dist
