// Collectives for data-parallel training (issue 16, part 2), from libtorch's own c10d: the
// TCPStore rendezvous, PrefixStore, and the Gloo (CPU) and NCCL (CUDA) process groups, used
// through c10d::Backend's virtual interface. Compiled by torchrt/build.rs like accel.cpp and
// wrapped by torchrt/src/dist.rs; nothing else calls these functions. The NCCL constructor
// lives in dist_nccl.cpp, compiled (and NCSN_DIST_NCCL defined here) only against a libtorch
// that has libtorch_cuda.so.
//
// Conventions are accel.cpp's: tensors cross as tch's `C_tensor` (a borrowed `torch::Tensor*`),
// no C++ exception crosses the boundary, and errors come back as malloc'ed messages (NULL on
// success) that Rust frees with `ncsn_dist_free`. Stores and groups cross as heap-allocated
// `c10::intrusive_ptr<c10d::Store>` / `c10::intrusive_ptr<c10d::Backend>` boxes, one strong
// reference each, freed by `ncsn_dist_store_free` / `ncsn_dist_group_free`.

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "dist_abi.h"
#include "guarded.h"

// ProcessGroupGloo without its header (dist_nccl.cpp does the same for ProcessGroupNCCL, whose
// constructors it looks up at run time instead of declaring the class).
//
// Why: ProcessGroupGloo.hpp includes gloo's own headers (gloo/context.h, ...), which the PyPI
// wheel does not ship, although libtorch_cpu.so contains Gloo and exports the class. So
// this is a declaration of the same class with exactly the names and signatures of the members
// we call, which therefore mangle to the symbols libtorch_cpu.so exports:
//   c10d::ProcessGroupGloo::Options::create_default(std::chrono::milliseconds)
//   c10d::ProcessGroupGloo::ProcessGroupGloo(intrusive_ptr<Store> const&, int, int,
//                                            intrusive_ptr<ProcessGroupGloo::Options>)
// (a signature mismatch would be an undefined symbol at link time, not a silent error).
// Its layout is NOT the real one, so this file obeys three rules:
//  1. Never allocate with our sizeof. The group is placement-new'ed into a raw block of
//     kGroupBlock bytes, far more than the real object (a few hundred bytes: Backend plus a
//     store, the options, contexts, threads, a work queue, a mutex and two condition
//     variables), and adopted with refcount 1 (ncsn_dist::in_block, dist_abi.h). The last
//     release deletes it through the library's virtual deleting destructor.
//  2. Never touch a member of ours: the group is used only through c10d::Backend (whose real
//     header is included, so its layout and vtable are the real ones; Backend is the sole
//     base, at offset 0, in both declarations) and the options object only as the opaque
//     pointer create_default returns and the constructor consumes. Its own fields (`devices`,
//     `threads`) are not even declared: create_default fills them (the default device,
//     honouring GLOO_SOCKET_IFNAME, as torch.distributed does), and the timeout, which lives
//     in the real Backend::Options base.
//  3. Never emit code for the class: the destructors are declared, not defined, so the key
//     function (and with it the vtable and typeinfo) stays in libtorch; calls to them are
//     virtual (intrusive_ptr's `delete`). build.rs checks that the shim's archives define no
//     member, vtable or typeinfo of the class, so none of ours can interpose on libtorch's.
// What proves it at run time: right after construction, the upper half of the block must be
// untouched (the constructor wrote within the real size), the Backend base must be at the
// block's start, and through Backend the group must report its name ("gloo"), the rank and
// size given, and the timeout asked for (check_group below); torchrt/tests/dist.rs then
// checks exact sums and broadcasts across processes, and that a silent peer fails a sum after
// exactly the timeout given (so it reaches Gloo's context).
namespace c10d {
class TORCH_API ProcessGroupGloo : public Backend {
 public:
  struct TORCH_API Options : public Backend::Options {
    static c10::intrusive_ptr<Options> create_default(std::chrono::milliseconds timeout);
    ~Options() override;  // declared only: never constructed or destroyed except virtually
  };
  explicit ProcessGroupGloo(const c10::intrusive_ptr<Store> &store, int rank, int size,
                            c10::intrusive_ptr<Options> options);
  ~ProcessGroupGloo() override;
};
}  // namespace c10d

static_assert(std::is_polymorphic<c10d::ProcessGroupGloo>::value &&
                  std::is_base_of<c10d::Backend, c10d::ProcessGroupGloo>::value,
              "ProcessGroupGloo is used only as a c10d::Backend");

namespace ncsn_dist {

#ifdef NCSN_DIST_NCCL
GroupPtr nccl_group(const StorePtr &store, int rank, int world, int64_t timeout_ms);
#endif

}  // namespace ncsn_dist

namespace {

using ncsn_dist::GroupPtr;
using ncsn_dist::StorePtr;

using ncsn_shim::message;

template <typename F>
char *guarded(F &&f) {
  return ncsn_shim::guarded("dist", std::forward<F>(f));
}

std::chrono::milliseconds millis(int64_t ms) { return std::chrono::milliseconds(ms); }

GroupPtr gloo_group(const StorePtr &store, int rank, int world, int64_t timeout_ms) {
  auto options = c10d::ProcessGroupGloo::Options::create_default(millis(timeout_ms));
  return ncsn_dist::group_in_block<c10d::ProcessGroupGloo>("ProcessGroupGloo", [&](void *at) {
    return new (at) c10d::ProcessGroupGloo(store, rank, world, std::move(options));
  });
}

// What the library's group says of itself through Backend, against what was asked for.
void check_group(const GroupPtr &group, const char *name, int rank, int world,
                 int64_t timeout_ms) {
  TORCH_CHECK(group->getBackendName() == name, "the ", name, " group calls itself ",
              group->getBackendName());
  TORCH_CHECK(group->getRank() == rank && group->getSize() == world, "the ", name,
              " group is rank ", group->getRank(), " of ", group->getSize(), ", asked for ",
              rank, " of ", world);
  auto timeout = group->getBackendOptions()->timeout;
  TORCH_CHECK(timeout == millis(timeout_ms), "the ", name, " group's timeout is ",
              timeout.count(), " ms, asked for ", timeout_ms);
}

}  // namespace

extern "C" {

void ncsn_dist_free(char *message) { std::free(message); }

bool ncsn_dist_nccl_built() {
#ifdef NCSN_DIST_NCCL
  return true;
#else
  return false;
#endif
}

// c10d::TCPStore at host:port; the server (is_server) listens there and waits until `world`
// ranks, itself included, have joined; the others connect (retrying until the timeout).
char *ncsn_dist_tcp_store(const char *host, uint16_t port, int64_t world, bool is_server,
                          int64_t timeout_ms, StorePtr **out) {
  return guarded([&] {
    c10d::TCPStoreOptions opts;
    opts.port = port;
    opts.isServer = is_server;
    opts.numWorkers = static_cast<std::size_t>(world);
    // Every rank adds itself to the store's count of workers, as torch.distributed does; only
    // the server then waits for the count to reach `world`.
    opts.waitWorkers = true;
    opts.timeout = millis(timeout_ms);
    StorePtr store = c10::make_intrusive<c10d::TCPStore>(std::string(host), opts);
    *out = new StorePtr(std::move(store));
  });
}

// Every key of the new store is `prefix/key` in `store`.
char *ncsn_dist_prefix_store(const StorePtr *store, const char *prefix, StorePtr **out) {
  return guarded([&] {
    StorePtr prefixed = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), *store);
    *out = new StorePtr(std::move(prefixed));
  });
}

void ncsn_dist_store_free(StorePtr *store) { delete store; }

// backend: 0 = Gloo, 1 = NCCL. Blocks until all `world` ranks have joined through `store`.
char *ncsn_dist_group_new(int backend, const StorePtr *store, int rank, int world,
                          int64_t timeout_ms, GroupPtr **out) {
  return guarded([&] {
    GroupPtr group;
    if (backend == 0) {
      group = gloo_group(*store, rank, world, timeout_ms);
    } else {
#ifdef NCSN_DIST_NCCL
      group = ncsn_dist::nccl_group(*store, rank, world, timeout_ms);
#else
      throw std::runtime_error(
          "this ncsn was built against a libtorch without CUDA/NCCL (its lib/ has no "
          "libtorch_cuda.so), so it has no NCCL process group");
#endif
    }
    check_group(group, backend == 0 ? "gloo" : "nccl", rank, world, timeout_ms);
    *out = new GroupPtr(std::move(group));
  });
}

void ncsn_dist_group_free(GroupPtr *group) { delete group; }

// The backend's own name for itself ("gloo", "nccl"), malloc'ed into *name.
char *ncsn_dist_backend_name(const GroupPtr *group, char **name) {
  return guarded([&] { *name = message((*group)->getBackendName().c_str()); });
}

// Work::wait: Gloo blocks until the collective is done and rethrows its error; NCCL makes the
// current CUDA stream wait for it (no host synchronisation) and returns.
char *ncsn_dist_all_reduce_sum(const GroupPtr *group, at::Tensor *t) {
  return guarded([&] {
    std::vector<at::Tensor> tensors{*t};
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    (*group)->allreduce(tensors, opts)->wait();
  });
}

char *ncsn_dist_broadcast(const GroupPtr *group, at::Tensor *t, int root) {
  return guarded([&] {
    std::vector<at::Tensor> tensors{*t};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    opts.rootTensor = 0;
    (*group)->broadcast(tensors, opts)->wait();
  });
}

char *ncsn_dist_barrier(const GroupPtr *group) {
  return guarded([&] { (*group)->barrier(c10d::BarrierOptions())->wait(); });
}

}  // extern "C"
