// Compiled time loop and spike-sparse products for sparse.kernels.compiled.
//
// The equations and the meaning of every tensor are documented in sparse/kernels/fused.py
// (the torch loop this file replaces step for step) and sparse/kernels/compiled.py.
//
// Why this file exists: at a 2 ms step a trained encoder leaves 95-98 % of its spike trains at
// zero, yet a dense product multiplies every one of them. Here every product whose left side is
// a spike train adds up the rows of the weight matrix that the active spikes select, and the
// per-step recurrence runs as one C++ loop per batch item (items are independent in time, so
// threads split the batch and never wait for each other inside the loop).
//
// Layout: time-major (time, batch, neurons), contiguous. Weights are passed transposed
// ("weight_t", (inputs, outputs)) so that the row an input spike selects is contiguous.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace {

using at::Tensor;

// Indices of the non-zero entries of each row of a (rows, cols) uint8 matrix.
struct RowIndex {
  std::vector<int64_t> start;  // rows + 1 offsets into index
  std::vector<int32_t> index;
};

RowIndex index_rows(const uint8_t* x, int64_t rows, int64_t cols) {
  RowIndex out;
  out.start.assign(rows + 1, 0);
  at::parallel_for(0, rows, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* row = x + r * cols;
      int64_t count = 0;
      for (int64_t j = 0; j < cols; ++j) count += row[j] != 0;
      out.start[r + 1] = count;
    }
  });
  for (int64_t r = 0; r < rows; ++r) out.start[r + 1] += out.start[r];
  out.index.resize(static_cast<size_t>(out.start[rows]));
  at::parallel_for(0, rows, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* row = x + r * cols;
      int32_t* dst = out.index.data() + out.start[r];
      for (int64_t j = 0; j < cols; ++j)
        if (row[j]) *dst++ = static_cast<int32_t>(j);
    }
  });
  return out;
}

template <typename T>
inline void add_row(T* __restrict dst, const T* __restrict src, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

template <typename T>
inline void add_scaled_row(T* __restrict dst, const T* __restrict src, T scale, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dst[i] += scale * src[i];
}

template <typename T>
inline T dot(const T* __restrict x, const T* __restrict y, int64_t n) {
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += x[i] * y[i];
  return sum;
}

void check_cpu_contiguous(const Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

// out (rows, outputs) = scale * x (rows, inputs) @ weight_t (inputs, outputs), x binary (uint8).
Tensor spike_linear(const Tensor& x, const Tensor& weight_t, double scale) {
  check_cpu_contiguous(x, "x");
  check_cpu_contiguous(weight_t, "weight_t");
  TORCH_CHECK(x.scalar_type() == at::kByte || x.scalar_type() == at::kBool, "x must be uint8 or bool");
  TORCH_CHECK(x.dim() == 2 && weight_t.dim() == 2 && x.size(1) == weight_t.size(0),
              "spike_linear: shapes do not match");
  const int64_t rows = x.size(0), inputs = x.size(1), outputs = weight_t.size(1);
  Tensor out = at::zeros({rows, outputs}, weight_t.options());
  const RowIndex idx = index_rows(reinterpret_cast<const uint8_t*>(x.data_ptr()), rows, inputs);
  AT_DISPATCH_FLOATING_TYPES(weight_t.scalar_type(), "spike_linear", [&] {
    const scalar_t* w = weight_t.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const scalar_t s = static_cast<scalar_t>(scale);
    at::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        scalar_t* dst = o + r * outputs;
        for (int64_t k = idx.start[r]; k < idx.start[r + 1]; ++k) {
          const scalar_t* src = w + static_cast<int64_t>(idx.index[k]) * outputs;
          if (scale == 1.0) add_row(dst, src, outputs);
          else add_scaled_row(dst, src, s, outputs);
        }
      }
    });
  });
  return out;
}

// out_t (inputs, outputs) = scale * x (rows, inputs)^T @ grad (rows, outputs), x binary:
// the weight gradient of a product with a spike train, transposed. Threads split the output
// columns, so that no two write the same entry.
Tensor spike_outer(const Tensor& x, const Tensor& grad, double scale) {
  check_cpu_contiguous(x, "x");
  check_cpu_contiguous(grad, "grad");
  TORCH_CHECK(x.scalar_type() == at::kByte || x.scalar_type() == at::kBool, "x must be uint8 or bool");
  TORCH_CHECK(x.dim() == 2 && grad.dim() == 2 && x.size(0) == grad.size(0),
              "spike_outer: shapes do not match");
  const int64_t rows = x.size(0), inputs = x.size(1), outputs = grad.size(1);
  Tensor out = at::zeros({inputs, outputs}, grad.options());
  const RowIndex idx = index_rows(reinterpret_cast<const uint8_t*>(x.data_ptr()), rows, inputs);
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "spike_outer", [&] {
    const scalar_t* g = grad.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const int64_t block = 64;
    const int64_t blocks = (outputs + block - 1) / block;
    at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
      const int64_t c0 = b0 * block, c1 = std::min(outputs, b1 * block), width = c1 - c0;
      for (int64_t r = 0; r < rows; ++r) {
        const scalar_t* src = g + r * outputs + c0;
        for (int64_t k = idx.start[r]; k < idx.start[r + 1]; ++k)
          add_row(o + static_cast<int64_t>(idx.index[k]) * outputs + c0, src, width);
      }
      if (scale != 1.0) {
        const scalar_t s = static_cast<scalar_t>(scale);
        for (int64_t j = 0; j < inputs; ++j)
          for (int64_t c = c0; c < c1; ++c) o[j * outputs + c] *= s;
      }
    });
  });
  return out;
}

// Whether every entry of x is exactly 0 or 1, and how many are 1: one pass that tells whether
// a tensor is a spike train and how dense it is.
template <typename T>
void count_spikes(const T* data, int64_t numel, int64_t& binary, int64_t& count) {
  const int64_t grain = 1 << 16;
  const int64_t blocks = (numel + grain - 1) / grain;
  std::vector<int64_t> ones(blocks, 0), others(blocks, 0);
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t lo = blk * grain, hi = std::min(numel, lo + grain);
      int64_t n1 = 0, nx = 0;
#pragma omp simd reduction(+ : n1, nx)
      for (int64_t i = lo; i < hi; ++i) {
        n1 += data[i] == T(1);
        nx += (data[i] != T(0)) & (data[i] != T(1));
      }
      ones[blk] = n1;
      others[blk] = nx;
    }
  });
  binary = 1;
  count = 0;
  for (int64_t blk = 0; blk < blocks; ++blk) {
    count += ones[blk];
    if (others[blk]) binary = 0;
  }
}

std::vector<int64_t> spike_stats(const Tensor& x) {
  check_cpu_contiguous(x, "x");
  int64_t binary = 1, count = 0;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "spike_stats", [&] {
    count_spikes(x.data_ptr<scalar_t>(), x.numel(), binary, count);
  });
  return {binary, count};
}

// Per-neuron coefficients of one population, as raw pointers.
template <typename T>
struct Coefficients {
  const T* alpha;
  const T* one_minus_alpha;
  const T* beta;
  const T* a;
  const T* b;
  const T* q;  // (1 - beta) a
  const T* c;  // beta b
  const T* recurrent_t;  // (N, N) row j = V[:, j], or nullptr
};

// w <- beta (w + b s_prev) + q u, with the torch loop's operation order (so the forward and
// the backward's recomputation produce identical bits).
template <typename T>
inline void adaptation_step(T* __restrict w, const T* __restrict s_prev, const T* __restrict u,
                            const Coefficients<T>& k, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) w[i] = (w[i] + k.b[i] * s_prev[i]) * k.beta[i] + k.q[i] * u[i];
}

// The membrane update of one step for one item; returns nothing, writes u and the spikes.
template <typename T>
inline void membrane_step(T* __restrict u, const T* __restrict u_prev, const T* __restrict s_prev,
                          const T* __restrict w, const T* __restrict current,
                          const T* __restrict recurrent_sum, const Coefficients<T>& k,
                          bool adaptive, int64_t n) {
  if (adaptive) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i)
      u[i] = ((u_prev[i] - s_prev[i]) * k.alpha[i] - k.one_minus_alpha[i] * w[i]) + current[i];
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) u[i] = (u_prev[i] - s_prev[i]) * k.alpha[i] + current[i];
  }
  if (recurrent_sum != nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) u[i] += recurrent_sum[i];
  }
}

template <typename T>
Coefficients<T> coefficients(const std::vector<Tensor>& coef, const c10::optional<Tensor>& recurrent_t) {
  Coefficients<T> k;
  k.alpha = coef[0].data_ptr<T>();
  k.one_minus_alpha = coef[1].data_ptr<T>();
  k.beta = coef[2].data_ptr<T>();
  k.a = coef[3].data_ptr<T>();
  k.b = coef[4].data_ptr<T>();
  k.q = coef[5].data_ptr<T>();
  k.c = coef[6].data_ptr<T>();
  k.recurrent_t = (recurrent_t.has_value() && recurrent_t->defined()) ? recurrent_t->data_ptr<T>() : nullptr;
  return k;
}

void check_coefficients(const std::vector<Tensor>& coef, int64_t n, at::ScalarType dtype) {
  TORCH_CHECK(coef.size() == 7, "expected 7 coefficient tensors (alpha, 1-alpha, beta, a, b, q, c)");
  for (const auto& t : coef) {
    check_cpu_contiguous(t, "coefficient");
    TORCH_CHECK(t.numel() == n && t.scalar_type() == dtype, "coefficient shape or dtype mismatch");
  }
}

template <typename T>
void forward_impl(const Tensor& current, const std::vector<Tensor>& coef,
                  const c10::optional<Tensor>& recurrent_t, const Tensor& u0, const Tensor& w0,
                  const Tensor& s0, const int64_t* last, bool save, bool adaptive,
                  int64_t checkpoint_every, Tensor& spikes, Tensor& spikes_bool, Tensor& u_all,
                  Tensor& w_ckpt, Tensor& u_final, Tensor& w_final, Tensor& s_final) {
  const int64_t steps = current.size(0), batch = current.size(1), n = current.size(2);
    const Coefficients<T> k = coefficients<T>(coef, recurrent_t);
    const T* cur = current.data_ptr<T>();
    T* spk = spikes.data_ptr<T>();
    bool* spk_bool = save ? spikes_bool.data_ptr<bool>() : nullptr;
    T* u_saved = save ? u_all.data_ptr<T>() : nullptr;
    T* w_saved = (save && adaptive) ? w_ckpt.data_ptr<T>() : nullptr;
    at::parallel_for(0, batch, 1, [&](int64_t item0, int64_t item1) {
      // per-thread work buffers, kept between calls: a stream of short chunks allocates
      // nothing here after its first chunk
      static thread_local std::vector<T> u_a, u_b, w, s_prev, recurrent_sum;
      static thread_local std::vector<int32_t> active;
      for (auto* buffer : {&u_a, &u_b, &w, &s_prev, &recurrent_sum}) buffer->resize(n);
      active.reserve(n);
      for (int64_t item = item0; item < item1; ++item) {
        std::copy_n(u0.data_ptr<T>() + item * n, n, u_a.data());
        std::copy_n(w0.data_ptr<T>() + item * n, n, w.data());
        std::copy_n(s0.data_ptr<T>() + item * n, n, s_prev.data());
        const T* u_prev = u_a.data();
        // the initial spikes may be any value (a caller's state); later ones are 0 or 1
        active.clear();
        for (int64_t j = 0; j < n; ++j)
          if (s_prev[j] != 0) active.push_back(static_cast<int32_t>(j));
        bool initial = true;
        for (int64_t t = 0; t < steps; ++t) {
          const int64_t row = (t * batch + item) * n;
          if (w_saved != nullptr && t % checkpoint_every == 0)
            std::copy_n(w.data(), n, w_saved + ((t / checkpoint_every) * batch + item) * n);
          T* u = u_saved != nullptr ? u_saved + row : (u_prev == u_a.data() ? u_b.data() : u_a.data());
          const T* rec = nullptr;
          if (k.recurrent_t != nullptr) {
            std::fill(recurrent_sum.begin(), recurrent_sum.end(), T(0));
            for (int32_t j : active) {
              if (initial && s_prev[j] != T(1))
                add_scaled_row(recurrent_sum.data(), k.recurrent_t + static_cast<int64_t>(j) * n, s_prev[j], n);
              else
                add_row(recurrent_sum.data(), k.recurrent_t + static_cast<int64_t>(j) * n, n);
            }
            rec = recurrent_sum.data();
          }
          membrane_step(u, u_prev, s_prev.data(), w.data(), cur + row, rec, k, adaptive, n);
          if (adaptive) adaptation_step(w.data(), s_prev.data(), u, k, n);
          T* s_out = spk + row;
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) s_out[i] = u[i] > T(1) ? T(1) : T(0);
          active.clear();
          for (int64_t i = 0; i < n; ++i)
            if (s_out[i] != 0) active.push_back(static_cast<int32_t>(i));
          std::copy_n(s_out, n, s_prev.data());
          if (spk_bool != nullptr)
            for (int64_t i = 0; i < n; ++i) spk_bool[row + i] = s_out[i] != 0;
          if (t == last[item]) {
            std::copy_n(u, n, u_final.data_ptr<T>() + item * n);
            std::copy_n(w.data(), n, w_final.data_ptr<T>() + item * n);
            std::copy_n(s_out, n, s_final.data_ptr<T>() + item * n);
          }
          u_prev = u;
          initial = false;
        }
      }
    });
}

// Forward of the AdLIF recurrence over all steps. Returns
// [spikes (T,B,N) dtype, spikes_bool (T,B,N) or undefined, u_all or undefined,
//  w_checkpoints or undefined, u_final, w_final, s_final].
std::vector<Tensor> adlif_forward(const Tensor& current, const std::vector<Tensor>& coef,
                                  const c10::optional<Tensor>& recurrent_t, const Tensor& u0,
                                  const Tensor& w0, const Tensor& s0, const Tensor& last_step,
                                  bool save, bool adaptive, int64_t checkpoint_every) {
  check_cpu_contiguous(current, "current");
  TORCH_CHECK(current.dim() == 3, "current must be (time, batch, neurons)");
  const int64_t steps = current.size(0), batch = current.size(1), n = current.size(2);
  check_coefficients(coef, n, current.scalar_type());
  for (const Tensor* t : {&u0, &w0, &s0}) {
    check_cpu_contiguous(*t, "state");
    TORCH_CHECK(t->size(0) == batch && t->size(1) == n, "state must be (batch, neurons)");
  }
  check_cpu_contiguous(last_step, "last_step");
  TORCH_CHECK(last_step.scalar_type() == at::kLong && last_step.numel() == batch, "last_step must be (batch,) int64");
  if (recurrent_t.has_value() && recurrent_t->defined()) {
    check_cpu_contiguous(*recurrent_t, "recurrent_t");
    TORCH_CHECK(recurrent_t->size(0) == n && recurrent_t->size(1) == n, "recurrent_t must be (N, N)");
  }
  TORCH_CHECK(checkpoint_every > 0, "checkpoint_every must be positive");

  Tensor spikes = at::empty_like(current);
  Tensor spikes_bool, u_all, w_ckpt;
  if (save) {
    spikes_bool = at::empty(current.sizes(), current.options().dtype(at::kBool));
    u_all = at::empty_like(current);
    if (adaptive) {
      const int64_t chunks = (steps + checkpoint_every - 1) / checkpoint_every;
      w_ckpt = at::empty({chunks, batch, n}, current.options());
    }
  }
  Tensor u_final = at::empty_like(u0), w_final = at::empty_like(w0), s_final = at::empty_like(s0);
  const int64_t* last = last_step.data_ptr<int64_t>();

  AT_DISPATCH_FLOATING_TYPES(current.scalar_type(), "adlif_forward", [&] {
    forward_impl<scalar_t>(current, coef, recurrent_t, u0, w0, s0, last, save, adaptive,
                           checkpoint_every, spikes, spikes_bool, u_all, w_ckpt, u_final,
                           w_final, s_final);
  });
  return {spikes, spikes_bool, u_all, w_ckpt, u_final, w_final, s_final};
}

template <typename T>
void backward_impl(const Tensor& grad_spikes, const Tensor& deriv, const Tensor& u_all,
                   const Tensor& spikes_bool, const Tensor& u0, const Tensor& s0,
                   const Tensor& w_start, const std::vector<Tensor>& coef,
                   const c10::optional<Tensor>& recurrent_t, const int64_t* last,
                   const Tensor& grad_u_final, const Tensor& grad_w_final,
                   const Tensor& grad_s_final, Tensor& du_next, Tensor& dw_next,
                   Tensor& grad_current, Tensor& acc_alpha, Tensor& acc_beta, Tensor& acc_a,
                   Tensor& acc_b, int64_t start, int64_t length, bool adaptive) {
  const int64_t batch = u_all.size(1), n = u_all.size(2);
    const Coefficients<T> k = coefficients<T>(coef, recurrent_t);
    const T* g_all = grad_spikes.data_ptr<T>();
    const T* d_all = deriv.data_ptr<T>();
    const T* u_saved = u_all.data_ptr<T>();
    const bool* s_saved = spikes_bool.data_ptr<bool>();
    T* du_all = grad_current.data_ptr<T>();
    at::parallel_for(0, batch, 1, [&](int64_t item0, int64_t item1) {
      // s_prev[k] = s_{start + k - 1} and, when adaptive, w_prev[k] = w_{start + k - 1}
      std::vector<T> s_prev(length * n), w_prev(adaptive ? (length + 1) * n : 0), dw(n), du(n);
      for (int64_t item = item0; item < item1; ++item) {
        for (int64_t kk = 0; kk < length; ++kk) {
          const int64_t t = start + kk;
          T* dst = s_prev.data() + kk * n;
          if (t == 0) {
            std::copy_n(s0.data_ptr<T>() + item * n, n, dst);
          } else {
            const bool* src = s_saved + ((t - 1) * batch + item) * n;
            for (int64_t i = 0; i < n; ++i) dst[i] = src[i] ? T(1) : T(0);
          }
        }
        auto u_at = [&](int64_t t) -> const T* {  // u_t, with u_{-1} the initial state
          return t < 0 ? u0.data_ptr<T>() + item * n : u_saved + (t * batch + item) * n;
        };
        if (adaptive) {
          std::copy_n(w_start.data_ptr<T>() + item * n, n, w_prev.data());
          for (int64_t kk = 0; kk < length; ++kk) {
            std::copy_n(w_prev.data() + kk * n, n, w_prev.data() + (kk + 1) * n);
            adaptation_step(w_prev.data() + (kk + 1) * n, s_prev.data() + kk * n,
                            u_at(start + kk), k, n);
          }
        }
        T* dun = du_next.data_ptr<T>() + item * n;
        T* dwn = dw_next.data_ptr<T>() + item * n;
        T* ga = acc_alpha.data_ptr<T>() + item * n;
        T* gbeta = acc_beta.data_ptr<T>() + item * n;
        T* g_a = acc_a.data_ptr<T>() + item * n;
        T* g_b = acc_b.data_ptr<T>() + item * n;
        const T* gu_end = grad_u_final.data_ptr<T>() + item * n;
        const T* gw_end = grad_w_final.data_ptr<T>() + item * n;
        const T* gs_end = grad_s_final.data_ptr<T>() + item * n;
        for (int64_t kk = length - 1; kk >= 0; --kk) {
          const int64_t t = start + kk;
          const int64_t row = (t * batch + item) * n;
          const bool is_end = t == last[item];
          const T* g = g_all + row;
          const T* d = d_all + (kk * batch + item) * n;
          const T* sp = s_prev.data() + kk * n;
          if (adaptive) {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) dw[i] = k.beta[i] * dwn[i] - k.one_minus_alpha[i] * dun[i];
            if (is_end)
              for (int64_t i = 0; i < n; ++i) dw[i] += gw_end[i];
          }
          // du_t = D_t ds_t + alpha du_{t+1} + q dw_t: the leak and adaptation terms for all
          // neurons, then ds_t (with its recurrent dot product) only where D_t is non-zero
          if (adaptive) {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) du[i] = k.alpha[i] * dun[i] + k.q[i] * dw[i];
          } else {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) du[i] = k.alpha[i] * dun[i];
          }
          for (int64_t i = 0; i < n; ++i) {
            if (d[i] == T(0)) continue;
            T ds = g[i] - k.alpha[i] * dun[i];
            if (adaptive) ds += k.c[i] * dwn[i];
            if (is_end) ds += gs_end[i];
            if (k.recurrent_t != nullptr) ds += dot(dun, k.recurrent_t + i * n, n);
            du[i] += d[i] * ds;
          }
          if (is_end)
            for (int64_t i = 0; i < n; ++i) du[i] += gu_end[i];
          const T* u_prev = u_at(t - 1);
          const T* u_now = u_saved + row;
          if (adaptive) {
            const T* wp = w_prev.data() + kk * n;
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) {
              ga[i] += du[i] * (u_prev[i] - sp[i] + wp[i]);
              gbeta[i] += dw[i] * (wp[i] + k.b[i] * sp[i] - k.a[i] * u_now[i]);
              g_a[i] += dw[i] * u_now[i];
              g_b[i] += dw[i] * sp[i];
            }
            std::copy_n(dw.data(), n, dwn);
          } else {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) ga[i] += du[i] * (u_prev[i] - sp[i]);
          }
          std::copy_n(du.data(), n, dun);
          std::copy_n(du.data(), n, du_all + row);
        }
      }
    });
}

// Reverse-time recursion over the steps [start, end) of one checkpoint chunk (see
// sparse/kernels/fused.py for the adjoint equations). du_next and dw_next (B, N) carry the
// adjoints of step `end` in and those of step `start` out; grad_current (T, B, N) receives du_t;
// the four (B, N) accumulators receive per-item sums for the gradients of alpha, beta, a and b
// (before the (1 - beta) and beta factors). deriv holds sigma'(u_t - 1) for the chunk,
// (end - start, B, N); w_start (B, N) is the adaptation variable before step `start`.
//
// The recurrent term du_{t+1} V enters du_t only through sigma'(u_t - 1) ds_t, so it is
// computed only for the neurons whose surrogate derivative is non-zero (the boxcar's support).
void adlif_backward_chunk(const Tensor& grad_spikes, const Tensor& deriv, const Tensor& u_all,
                          const Tensor& spikes_bool, const Tensor& u0, const Tensor& s0,
                          const Tensor& w_start, const std::vector<Tensor>& coef,
                          const c10::optional<Tensor>& recurrent_t, const Tensor& last_step,
                          const Tensor& grad_u_final, const Tensor& grad_w_final,
                          const Tensor& grad_s_final, Tensor du_next, Tensor dw_next,
                          Tensor grad_current, Tensor acc_alpha, Tensor acc_beta, Tensor acc_a,
                          Tensor acc_b, int64_t start, int64_t end, bool adaptive) {
  const int64_t batch = u_all.size(1), n = u_all.size(2);
  const int64_t length = end - start;
  for (const Tensor& t : std::vector<Tensor>{grad_spikes, deriv, u_all, spikes_bool, u0, s0,
                                             w_start, grad_u_final, grad_w_final, grad_s_final,
                                             du_next, dw_next, grad_current, acc_alpha, acc_beta,
                                             acc_a, acc_b})
    check_cpu_contiguous(t, "backward tensor");
  TORCH_CHECK(length > 0 && deriv.size(0) == length, "deriv must cover the chunk");
  TORCH_CHECK(spikes_bool.scalar_type() == at::kBool, "spikes_bool must be bool");
  check_coefficients(coef, n, u_all.scalar_type());
  const int64_t* last = last_step.data_ptr<int64_t>();

  AT_DISPATCH_FLOATING_TYPES(u_all.scalar_type(), "adlif_backward_chunk", [&] {
    backward_impl<scalar_t>(grad_spikes, deriv, u_all, spikes_bool, u0, s0, w_start, coef,
                            recurrent_t, last, grad_u_final, grad_w_final, grad_s_final, du_next,
                            dw_next, grad_current, acc_alpha, acc_beta, acc_a, acc_b, start,
                            length, adaptive);
  });
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "sparse: compiled AdLIF time loop and spike-sparse products";
  m.def("spike_linear", &spike_linear, "scale * x @ weight_t for a binary x (rows, inputs)");
  m.def("spike_stats", &spike_stats, "[is binary (0/1), number of ones] of a float tensor");
  m.def("spike_outer", &spike_outer, "scale * x^T @ grad for a binary x, (inputs, outputs)");
  m.def("adlif_forward", &adlif_forward, "AdLIF recurrence over all steps");
  m.def("adlif_backward_chunk", &adlif_backward_chunk, "reverse-time recursion over one chunk");
}
