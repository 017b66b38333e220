// The CRP blocks' max-pool (kernel k, stride 1, padding k/2: NCSNv2's 5×5) on the CPU, for
// issue 15: libtorch's max_pool2d_with_indices scans all k² taps of every output with scalar
// index arithmetic, 9 % of a CIFAR-10 training step at one thread (torch.profiler on the
// authors' step: 72 ms per call, more than all the ELUs, norms and adds together). A max over
// a k×k window is a max over k rows of maxima over k columns, so this kernel makes two passes of
// k vectorisable compare-and-selects over contiguous rows (2k taps instead of k²).
//
// It is exact, not close: the values are the same floats, and the indices are the ones
// libtorch's kernel picks (aten/src/ATen/native/cpu/MaxPoolKernel.cpp, cpu_max_pool): scanning
// the window row by row from a maximum of -inf at the window's first in-bounds tap, a tap is
// taken when it is greater or NaN. That rule keeps the first maximum in row-major order, or the
// last NaN; both are kept by the row pass and then by the column pass over the rows' winners,
// so the two-pass result is the one-pass result. The backward is libtorch's own
// max_pool2d_with_indices_backward on those indices, so gradients are bit-identical too
// (torchrt/tests/pool.rs checks values, indices and gradients against libtorch with ties, -inf
// and NaN).
//
// Anything else (another device or dtype, a non-contiguous or channels-last input, autocast's
// bfloat16) goes to libtorch's max_pool2d unchanged.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "guarded.h"

namespace {

// A tap, for a run of n outputs: where x[j] beats best[j] (greater, or NaN: libtorch's rule),
// x[j] becomes the best, and its index at[j] (the row pass: the column, j + offset; the column
// pass: row · W + that row's winning column). Branch-free and on restrict pointers, so the
// compiler vectorises it without a run-time aliasing check (whose scalar fallback, a
// mispredicted branch per tap on random data, is what a first version of this kernel ran).
inline void tap_columns(const float *__restrict__ x, float *__restrict__ best,
                        int32_t *__restrict__ at, int32_t offset, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float v = x[j];
    const bool take = (v > best[j]) | (v != v);
    best[j] = take ? v : best[j];
    at[j] = take ? static_cast<int32_t>(j) + offset : at[j];
  }
}

inline void tap_rows(const float *__restrict__ x, const int32_t *__restrict__ x_at,
                     float *__restrict__ best, int32_t *__restrict__ at, int32_t base,
                     int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float v = x[j];
    const int32_t i = base + x_at[j];  // read whether taken or not: a conditional load would
                                       // keep the loop scalar
    const bool take = (v > best[j]) | (v != v);
    best[j] = take ? v : best[j];
    at[j] = take ? i : at[j];
  }
}

// The same taps without indices (inference: no backward will ask for them).
inline void tap_values(const float *__restrict__ x, float *__restrict__ best, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float v = x[j];
    best[j] = ((v > best[j]) | (v != v)) ? v : best[j];
  }
}

// Per-thread scratch: the row pass's winners (values and columns) of a plane, and one output
// row's best values and flat indices.
struct Scratch {
  std::vector<float> row_v, best;
  std::vector<int32_t> row_i, best_i;
};

// One plane: `in`, `out` and `idx` are H×W (stride 1 and padding k/2 keep the size); idx is
// written only when Indices.
template <bool Indices>
void pool_plane(const float *in, float *out, int64_t *idx, int64_t H, int64_t W, int64_t k,
                Scratch &s) {
  const int64_t p = k / 2;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  s.row_v.resize(H * W);
  s.best.resize(W);
  if (Indices) s.row_i.resize(H * W), s.best_i.resize(W);
  // Row pass: output column ow of row h sees input columns ow - p … ow - p + k - 1 of row h,
  // starting from -inf at the first in-bounds one.
  for (int64_t h = 0; h < H; ++h) {
    const float *src = in + h * W;
    float *v = s.row_v.data() + h * W;
    int32_t *vi = Indices ? s.row_i.data() + h * W : nullptr;
    for (int64_t ow = 0; ow < W; ++ow) {
      v[ow] = neg_inf;
      if (Indices) vi[ow] = static_cast<int32_t>(ow - p < 0 ? 0 : ow - p);
    }
    for (int64_t d = 0; d < k; ++d) {
      const int64_t o = d - p;  // the tap's column offset: outputs lo … hi - 1 have it in bounds
      const int64_t lo = o < 0 ? -o : 0, hi = o > 0 ? W - o : W;
      if (hi <= lo) continue;
      if (Indices)
        tap_columns(src + lo + o, v + lo, vi + lo, static_cast<int32_t>(lo + o), hi - lo);
      else
        tap_values(src + lo + o, v + lo, hi - lo);
    }
  }
  // Column pass: output row oh takes the row pass's winners of input rows oh - p … oh - p + k
  // - 1, starting from -inf at the first in-bounds row's winner index.
  float *best = s.best.data();
  int32_t *best_i = Indices ? s.best_i.data() : nullptr;
  for (int64_t oh = 0; oh < H; ++oh) {
    const int64_t first = oh - p < 0 ? 0 : oh - p;
    const int64_t last = oh - p + k > H ? H : oh - p + k;
    for (int64_t ow = 0; ow < W; ++ow) best[ow] = neg_inf;
    if (Indices) {
      const int32_t *fi = s.row_i.data() + first * W;
      for (int64_t ow = 0; ow < W; ++ow) best_i[ow] = static_cast<int32_t>(first * W) + fi[ow];
    }
    for (int64_t ih = first; ih < last; ++ih) {
      if (Indices)
        tap_rows(s.row_v.data() + ih * W, s.row_i.data() + ih * W, best, best_i,
                 static_cast<int32_t>(ih * W), W);
      else
        tap_values(s.row_v.data() + ih * W, best, W);
    }
    std::copy(best, best + W, out + oh * W);
    if (Indices) std::copy(best_i, best_i + W, idx + oh * W);
  }
}

// The fast path's conditions; anything else is libtorch's, an empty tensor included (libtorch
// returns an empty batch and refuses an empty plane, and so must this).
bool fast(const at::Tensor &x, int64_t k) {
  return x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4 &&
         x.is_contiguous() && x.numel() > 0 && k >= 1 && k % 2 == 1 &&
         x.size(2) * x.size(3) < (int64_t{1} << 31);
}

template <bool Indices>
void pool(const at::Tensor &x, int64_t k, at::Tensor &out, at::Tensor &idx) {
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  out = at::empty_like(x);
  if (Indices) idx = at::empty(x.sizes(), x.options().dtype(at::kLong));
  const float *in = x.data_ptr<float>();
  float *o = out.data_ptr<float>();
  int64_t *i = Indices ? idx.data_ptr<int64_t>() : nullptr;
  // Chunks of at least ~32 k outputs, as libtorch's own pooling kernels size theirs.
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, H * W));
  at::parallel_for(0, planes, grain, [&](int64_t begin, int64_t end) {
    Scratch scratch;
    for (int64_t c = begin; c < end; ++c)
      pool_plane<Indices>(in + c * H * W, o + c * H * W, Indices ? i + c * H * W : nullptr, H,
                          W, k, scratch);
  });
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct MaxPoolSame : public torch::autograd::Function<MaxPoolSame> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x, int64_t k) {
    at::Tensor out, idx;
    pool<true>(x, k, out, idx);
    ctx->save_for_backward({x, idx});
    ctx->saved_data["k"] = k;
    return out;
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const int64_t k = ctx->saved_data["k"].toInt();
    auto grad = at::max_pool2d_with_indices_backward(grads[0], saved[0], {k, k}, {1, 1},
                                                     {k / 2, k / 2}, {1, 1}, false, saved[1]);
    return {grad, at::Tensor()};
  }
};

at::Tensor max_pool_same(const at::Tensor &x, int64_t k) {
  if (!fast(x, k)) return at::max_pool2d(x, {k, k}, {1, 1}, {k / 2, k / 2});
  if (x.requires_grad() && at::GradMode::is_enabled()) return MaxPoolSame::apply(x, k);
  at::Tensor out, unused;
  pool<false>(x, k, out, unused);
  return out;
}

}  // namespace

extern "C" {

// max_pool2d(x, k, stride 1, padding k / 2), differentiable; see the head of this file.
char *ncsn_pool_max_same(const at::Tensor *x, int64_t k, at::Tensor **out) {
  return ncsn_shim::guarded("max_pool", [&] { *out = new at::Tensor(max_pool_same(*x, k)); });
}

// The fast kernel's values and indices alone (no autograd), for the tests to hold against
// libtorch's max_pool2d_with_indices; refuses inputs the fast path does not take.
char *ncsn_pool_max_same_with_indices(const at::Tensor *x, int64_t k, at::Tensor **out,
                                      at::Tensor **indices) {
  return ncsn_shim::guarded("max_pool", [&] {
    TORCH_CHECK(fast(*x, k), "not an input of the fast path");
    at::NoGradGuard no_grad;
    at::Tensor o, i;
    pool<true>(*x, k, o, i);
    *out = new at::Tensor(o);
    *indices = new at::Tensor(i);
  });
}

}  // extern "C"
