// Shared by dist.cpp and dist_nccl.cpp: constructing an object of a libtorch class that the
// shim only declares, so that its real size is unknown here (see the ABI note in dist.cpp).
#pragma once

#include <c10/util/Exception.h>
#include <c10/util/intrusive_ptr.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <new>
#include <utility>

namespace ncsn_dist {

using StorePtr = c10::intrusive_ptr<c10d::Store>;
using GroupPtr = c10::intrusive_ptr<c10d::Backend>;

constexpr unsigned char kFill = 0xA5;
// A process group's block: the real ones are a few hundred bytes (Gloo) to a few KiB (NCCL).
constexpr std::size_t kGroupBlock = 64 * 1024;

// Runs `construct(block)` (a placement new of T into `block`, returning it) in a fresh raw block
// of `bytes` and adopts the result with refcount 1. The block is filled with a pattern first:
// the upper half must still hold it afterwards, i.e. the library's constructor wrote only within
// the first half, so the real object is smaller than the block. The last release deletes it
// through the library's virtual deleting destructor, whose sized ::operator delete is free()
// with libstdc++, as is the unsized one that pairs with ::operator new(bytes).
template <typename T, typename Construct>
c10::intrusive_ptr<T> in_block(std::size_t bytes, const char *what, Construct &&construct) {
  void *block = ::operator new(bytes);
  std::memset(block, kFill, bytes);
  T *object;
  try {
    object = construct(block);
  } catch (...) {
    ::operator delete(block);
    throw;
  }
  auto adopted = c10::intrusive_ptr<T>::unsafe_steal_from_new(object);
  const auto *tail = static_cast<const unsigned char *>(block) + bytes / 2;
  bool untouched =
      std::all_of(tail, tail + bytes / 2, [](unsigned char b) { return b == kFill; });
  TORCH_CHECK(untouched, what, " wrote past half of its ", bytes,
              "-byte block: this libtorch's class is larger than ncsn's dist shim allows");
  TORCH_CHECK(static_cast<void *>(object) == block, what, " was not constructed at its block");
  return adopted;
}

// A process group T (a c10d::Backend) constructed in a kGroupBlock by `construct`, as a Backend,
// which must be at the object's start, as it is in both the real and the declared class.
template <typename T, typename Construct>
GroupPtr group_in_block(const char *what, Construct &&construct) {
  auto group = in_block<T>(kGroupBlock, what, std::forward<Construct>(construct));
  TORCH_CHECK(static_cast<void *>(static_cast<c10d::Backend *>(group.get())) ==
                  static_cast<void *>(group.get()),
              what, "'s Backend base is not at its start");
  return group;
}

}  // namespace ncsn_dist
