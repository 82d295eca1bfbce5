// One training step of a sparse ensemble in one operator: forward, backward and Adam, each replica
// on one task of torch's thread pool (at::parallel_for). Built by pruneplast/kernels/fused.py, which
// also lays out the tensors this file reads; the arithmetic is the model's (pruneplast/network.py):
//
//   per hidden layer   h = (act(W h + b) + sigma * noise) * scale - shift
//   loss               sum over replicas of the mean cross-entropy of the logits
//   update             Adam as torch._fused_adam_ does it on the CPU, one learning rate per replica
//
// Only the units that can change the logits are computed. Per replica and layer, the computed rows
// are the live units (varying with the sample; one value per sample) followed by the constant units
// (one value per replica: the constant-unit fold). Kept weights are stored row by row (CSR), in
// each row those from live units first; an entry's column is the position of its input unit among the previous layer's computed rows (live
// first, then constant), or the input feature for the first layer. The backward pass also walks the
// entries from live units column by column (an index of them, rows in order within a column), so
// that each gradient still sums in the order row by row would. Activations are stored
// feature-major (unit, sample), so every product runs over contiguous samples. Sums over samples
// use 16 lanes combined in a fixed order: a result does not depend on the vector width of the
// machine: products and sums are fused multiply-adds where written so (std::fma, one rounding on
// every machine) and nowhere else (the build turns off the compiler's own contraction).

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#if defined(__AVX__)
#include <immintrin.h>
#endif
#include <vector>

namespace {

constexpr int LANES = 16;

// Per (replica, layer): where its rows, row pointers, work space and column offsets are (see fused.py).
enum Desc : int64_t { ROWS_OFF = 0, N_LIVE, N_ROWS, PTR_OFF, WS_OFF, WIDTH, XT_OFF, CPTR_OFF, N_DESC };

// Sixteen floats, held in vector registers (one AVX-512 register, two AVX ones, ...): every sum
// below runs in 16 lanes whatever the machine's vector width, so its result does not depend on it.
typedef float v16 __attribute__((vector_size(LANES * sizeof(float))));

#if defined(__AVX512F__)
inline v16 vload(const float* p) { return (v16)_mm512_loadu_ps(p); }
inline void vstore(float* p, v16 v) { _mm512_storeu_ps(p, (__m512)v); }
#else
inline v16 vload(const float* p) {
  v16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void vstore(float* p, v16 v) { std::memcpy(p, &v, sizeof v); }
#endif
// x in every lane (one broadcast instruction where the build has one; the loop below compiles to
// sixteen masked moves)
inline v16 splat(float x) {
#if defined(__AVX512F__)
  return (v16)_mm512_set1_ps(x);
#elif defined(__AVX__)
  const __m256 h = _mm256_set1_ps(x);
  union {
    __m256 h[2];
    v16 v;
  } u{{h, h}};
  return u.v;
#else
  v16 v;
  for (int j = 0; j < LANES; ++j) v[j] = x;
  return v;
#endif
}
// a * b + c with one rounding per lane (std::fma), and max(a, 0) (0 for NaN and -0, as a > 0 ? a : 0),
// with the machine's instructions where the build targets them, lane by lane elsewhere: the same bits.
#if defined(__AVX512F__)
inline v16 vfma(v16 a, v16 b, v16 c) { return (v16)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c); }
inline v16 vrelu(v16 a) { return (v16)_mm512_max_ps((__m512)a, _mm512_setzero_ps()); }
#elif defined(__AVX2__) && defined(__FMA__)
union Halves {
  v16 v;
  __m256 h[2];
};
inline v16 vfma(v16 a, v16 b, v16 c) {
  Halves x{a}, y{b}, z{c}, r;
  for (int k = 0; k < 2; ++k) r.h[k] = _mm256_fmadd_ps(x.h[k], y.h[k], z.h[k]);
  return r.v;
}
inline v16 vrelu(v16 a) {
  Halves x{a}, r;
  for (int k = 0; k < 2; ++k) r.h[k] = _mm256_max_ps(x.h[k], _mm256_setzero_ps());
  return r.v;
}
#else
inline v16 vfma(v16 a, v16 b, v16 c) {
  v16 r;
  for (int j = 0; j < LANES; ++j) r[j] = std::fma(a[j], b[j], c[j]);
  return r;
}
inline v16 vrelu(v16 a) {
  v16 r;
  for (int j = 0; j < LANES; ++j) r[j] = a[j] > 0.0f ? a[j] : 0.0f;
  return r;
}
#endif

// The lanes summed pairwise in a fixed order: lane j + 8 into j, then j + 4, j + 2, j + 1.
inline float fold_lanes(v16 v) {
#if defined(__AVX512F__)
  const __m512 x = (__m512)v;  // the same additions on the machine's halves and quarters
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1));
  const __m256 h8 = _mm256_add_ps(_mm512_castps512_ps256(x), hi);
  const __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
  const __m128 h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
  return _mm_cvtss_f32(_mm_add_ss(h2, _mm_shuffle_ps(h2, h2, 1)));
#else
  float a[LANES];
  vstore(a, v);
  for (int j = 0; j < 8; ++j) a[j] += a[j + 8];
  for (int j = 0; j < 4; ++j) a[j] += a[j + 4];
  for (int j = 0; j < 2; ++j) a[j] += a[j + 2];
  return a[0] + a[1];
#endif
}

// Sample i goes to lane i mod 16 (in order), then the lanes are folded.
inline float lane_sum(const float* a, int64_t n) {
  v16 acc = splat(0.0f);
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES) acc += vload(a + i);
  if (i == n) return fold_lanes(acc);
  float t[LANES];  // the last samples, lane by lane (the accumulator stays in registers above)
  vstore(t, acc);
  for (int j = 0; i + j < n; ++j) t[j] += a[i + j];
  return fold_lanes(vload(t));
}

// sum_i g[i] h[i] (lanes as lane_sum, a fused multiply-add per sample).
inline float lane_dot(const float* __restrict g, const float* __restrict h, int64_t n) {
  v16 acc = splat(0.0f);
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES) acc = vfma(vload(g + i), vload(h + i), acc);
  if (i == n) return fold_lanes(acc);
  float t[LANES];  // the last samples, lane by lane
  vstore(t, acc);
  for (int j = 0; i + j < n; ++j) t[j] = std::fma(g[i + j], h[i + j], t[j]);
  return fold_lanes(vload(t));
}

// z[i] = bias + sum_e w_e h_e[i] (entries in order, a fused multiply-add each), with ReLU when
// asked, 64 samples at a time in registers: one store per sample instead of one per entry. With
// hout, also hout[i] = z[i] * sc - sh (the modulation without noise: a product, then a difference,
// each rounded, as the engine's), from the registers.
inline void row_product(float bias, const float* __restrict w, const int64_t* __restrict col, int64_t n_e,
                        const float* __restrict h, int64_t B, bool relu, float* __restrict z,
                        float* __restrict hout = nullptr, float sc = 1.0f, float sh = 0.0f) {
  constexpr int64_t CH = 4 * LANES;
  const v16 scv = splat(sc), shv = splat(sh);
  int64_t i = 0;
  for (; i + CH <= B; i += CH) {
    v16 a0 = splat(bias), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t e = 0; e < n_e; ++e) {
      const v16 wv = splat(w[e]);
      const float* hr = h + col[e] * B + i;
      a0 = vfma(wv, vload(hr), a0);
      a1 = vfma(wv, vload(hr + LANES), a1);
      a2 = vfma(wv, vload(hr + 2 * LANES), a2);
      a3 = vfma(wv, vload(hr + 3 * LANES), a3);
    }
    if (relu) {
      a0 = vrelu(a0), a1 = vrelu(a1), a2 = vrelu(a2), a3 = vrelu(a3);
    }
    vstore(z + i, a0), vstore(z + i + LANES, a1), vstore(z + i + 2 * LANES, a2), vstore(z + i + 3 * LANES, a3);
    if (hout != nullptr) {
      vstore(hout + i, a0 * scv - shv), vstore(hout + i + LANES, a1 * scv - shv);
      vstore(hout + i + 2 * LANES, a2 * scv - shv), vstore(hout + i + 3 * LANES, a3 * scv - shv);
    }
  }
  for (; i + LANES <= B; i += LANES) {
    v16 a = splat(bias);
    for (int64_t e = 0; e < n_e; ++e) a = vfma(splat(w[e]), vload(h + col[e] * B + i), a);
    if (relu) a = vrelu(a);
    vstore(z + i, a);
    if (hout != nullptr) vstore(hout + i, a * scv - shv);
  }
  for (; i < B; ++i) {
    float a = bias;
    for (int64_t e = 0; e < n_e; ++e) a = std::fma(w[e], h[col[e] * B + i], a);
    z[i] = relu && !(a > 0.0f) ? 0.0f : a;
    if (hout != nullptr) hout[i] = z[i] * sc - sh;
  }
}

// The gradient at a hidden row's pre-activations, in place: g[i] * sc times act'(a[i]) (tanh:
// 1 - a^2 of its output a; ReLU: 0 where a <= 0 or NaN), each product rounded as the engine's; returns
// its sum over samples as lane_sum does (one pass).
inline float act_grad_sum(float* __restrict g, const float* __restrict a, int64_t B, float sc, bool th) {
  const v16 scv = splat(sc), one = splat(1.0f), zero = splat(0.0f);
  v16 acc = zero;
  int64_t i = 0;
  for (; i + LANES <= B; i += LANES) {
    const v16 gs = vload(g + i) * scv, av = vload(a + i);
    const v16 gv = th ? gs * (one - av * av) : (v16)((av > zero) & (decltype(av > zero))gs);
    vstore(g + i, gv);
    acc += gv;
  }
  float t[LANES];  // the last samples, lane by lane
  vstore(t, acc);
  for (int j = 0; i + j < B; ++j) {
    const float gs = g[i + j] * sc, av = a[i + j];
    g[i + j] = th ? gs * (1.0f - av * av) : (av > 0.0f ? gs : 0.0f);
    t[j] += g[i + j];
  }
  return fold_lanes(vload(t));
}

// The backward pass of one input column k of a layer: for each of its entries e from a live unit
// (rows in order: the same order as row by row), the weight's gradient sum_i g_r[i] h[i] (lanes as
// lane_dot) and gh[i] += w_e g_r[i] (gh from zero; not when gh is null). The column's inputs and its
// gradient stay in registers, 128 samples at a time (one load of g_r per entry and sample, no store
// but the column's own); acc holds each entry's partial sums between blocks.
// vectors of samples a block of column_backward keeps in registers (2 x BLOCK of them: 32 registers
// of 16 floats with AVX-512, 16 of 8 with AVX2); the block size changes no sum's order
#if defined(__AVX512F__)
constexpr int64_t BLOCK = 8;
#else
constexpr int64_t BLOCK = 4;
#endif

// One block of NC vectors of samples (from vector c0) of column_backward.
template <int NC>
inline void column_block(const int64_t* __restrict ents, const int64_t* __restrict rows, int64_t n,
                         const float* __restrict G, const float* __restrict P, const float* __restrict h,
                         float* __restrict gh, v16* __restrict acc, int64_t B, int64_t c0) {
  v16 hv[NC], pv[NC];
#pragma GCC unroll 8
  for (int c = 0; c < NC; ++c) hv[c] = vload(h + (c0 + c) * LANES), pv[c] = splat(0.0f);
  for (int64_t j = 0; j < n; ++j) {
    const float* g = G + rows[j] * B + c0 * LANES;
    const v16 wv = splat(P[ents[j]]);
    v16 a = c0 == 0 ? splat(0.0f) : acc[j];
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c) {
      const v16 gv = vload(g + c * LANES);
      a = vfma(gv, hv[c], a);
      pv[c] = vfma(wv, gv, pv[c]);
    }
    acc[j] = a;
  }
  if (gh != nullptr) {
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c) vstore(gh + (c0 + c) * LANES, pv[c]);
  }
}

inline void column_backward(const int64_t* __restrict ents, const int64_t* __restrict rows, int64_t n,
                            const float* __restrict G, const float* __restrict P, const float* __restrict h,
                            float* __restrict gh, float* __restrict GR, v16* __restrict acc, int64_t B) {
  const int64_t full = B / LANES;  // whole vectors of samples
  for (int64_t c0 = 0; c0 < full; c0 += BLOCK) {
    switch (std::min(BLOCK, full - c0)) {
      case 8: column_block<8>(ents, rows, n, G, P, h, gh, acc, B, c0); break;
      case 7: column_block<7>(ents, rows, n, G, P, h, gh, acc, B, c0); break;
      case 6: column_block<6>(ents, rows, n, G, P, h, gh, acc, B, c0); break;
      case 5: column_block<5>(ents, rows, n, G, P, h, gh, acc, B, c0); break;
      case 4: column_block<4>(ents, rows, n, G, P, h, gh, acc, B, c0); break;
      case 3: column_block<3>(ents, rows, n, G, P, h, gh, acc, B, c0); break;
      case 2: column_block<2>(ents, rows, n, G, P, h, gh, acc, B, c0); break;
      default: column_block<1>(ents, rows, n, G, P, h, gh, acc, B, c0); break;
    }
  }
  const int64_t i = full * LANES;  // the last samples, lane by lane
  if (gh != nullptr) std::fill(gh + i, gh + B, 0.0f);
  for (int64_t j = 0; j < n; ++j) {
    const float* g = G + rows[j] * B;
    if (i == B) {
      GR[ents[j]] = fold_lanes(full > 0 ? acc[j] : splat(0.0f));
      continue;
    }
    float t[LANES];
    vstore(t, full > 0 ? acc[j] : splat(0.0f));
    const float w = P[ents[j]];
    for (int64_t q = 0; i + q < B; ++q) {
      t[q] = std::fma(g[i + q], h[i + q], t[q]);
      if (gh != nullptr) gh[i + q] = std::fma(w, g[i + q], gh[i + q]);
    }
    GR[ents[j]] = fold_lanes(vload(t));
  }
}

// The entries of one row from constant inputs, backward: each weight's gradient s c[k] (s: the
// row's bias gradient), then each constant input's gradient gc[k] += w s (a fused multiply-add,
// entries in order). Two loops: the first has no dependence between entries (it vectorises).
inline void const_backward(float s, const float* __restrict w, const int64_t* __restrict col, int64_t n, int64_t off,
                           const float* __restrict c, float* __restrict gc, float* __restrict gw) {
  for (int64_t j = 0; j < n; ++j) gw[j] = s * c[col[j] - off];
  for (int64_t j = 0; j < n; ++j) {
    const int64_t k = col[j] - off;
    gc[k] = std::fma(w[j], s, gc[k]);
  }
}

// Adam as torch._fused_adam_ computes it on the CPU, over n consecutive entries (no two pointers
// overlap: the loop is vectorised, with the same roundings lane by lane).
inline void adam_update(float* __restrict p, const float* __restrict grad, float* __restrict ea_,
                        float* __restrict eas_, int64_t n, float w1, float b2, float w2, float bc2_sqrt,
                        float feps, float neg_step) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i];
    const float ea = std::fma(w1, g - ea_[i], ea_[i]);
    const float eas = eas_[i] * b2 + w2 * g * g;
    ea_[i] = ea;
    eas_[i] = eas;
    const float denom = std::sqrt(eas) / bc2_sqrt + feps;
    p[i] = p[i] + neg_step * ea / denom;
  }
}

// tanh with ATen's own vectorised kernel (the engine's torch.tanh), on a buffer of n floats.
inline void tanh_inplace(float* p, int64_t n) {
  if (n > 0) at::from_blob(p, {n}, at::TensorOptions().dtype(at::kFloat)).tanh_();
}

struct Layer {
  int64_t rows_off, n_live, n_rows, n_const;
  const int64_t* ptr;  // n_rows + 1 entry offsets (global)
  int64_t width;
  const int64_t* cptr;  // n_inputs + 1 offsets into the column-ordered entries (global)
  float *A, *H, *G, *Ac, *Hc, *Gc;  // live: act(z), modulated h, gradient; constant: the same
};

}  // namespace

// One step for every replica. Returns each replica's mean cross-entropy over the batch (M,) float
// (summed in double, divided, then rounded).
at::Tensor fused_step(
    at::Tensor params,      // (P,) float: every kept weight (entry order), then every computed row's bias
    at::Tensor grads,       // (P,) float: work space for the gradients
    at::Tensor exp_avg,     // (P,) float: Adam's first moments
    at::Tensor exp_avg_sq,  // (P,) float: Adam's second moments
    at::Tensor rowptr,      // int64: per (replica, layer) n_rows + 1 global entry offsets
    at::Tensor mid,         // int64: per computed row (global), its first entry from a constant unit
    at::Tensor cols,        // int64 (E,): each entry's input column (see above)
    at::Tensor units,       // int64: each computed row's unit in its layer
    at::Tensor desc,        // int64 (M, L, N_DESC)
    at::Tensor colptr,      // int64: per (replica, layer) n_inputs + 1 offsets into csc_e and csc_r
    at::Tensor csc_e,       // int64: the entries from live units (and inputs), column by column, rows in order
    at::Tensor csc_r,       // int64: each one's row
    at::Tensor work,        // float: work space (activations, gradients), per replica
    at::Tensor x,           // (M, B, D) float
    at::Tensor y,           // (M, B) int64
    std::vector<at::Tensor> noise,  // per hidden layer (M, B, width) float, or empty
    at::Tensor sigma,       // (M,) float: internal-noise SD (0: none)
    at::Tensor use_tanh,    // (M,) bool
    at::Tensor scale,       // (M,) float: damping x effective gain
    at::Tensor shift,       // (M,) float: protection shift
    at::Tensor lr,          // (M,) double
    double step, double beta1, double beta2, double eps, int64_t n_entries) {
  TORCH_CHECK(params.is_contiguous() && params.scalar_type() == at::kFloat, "params: contiguous float32");
  TORCH_CHECK(x.is_contiguous() && y.is_contiguous(), "x and y must be contiguous");
  const int64_t M = x.size(0), B = x.size(1), D = x.size(2), L = desc.size(1);
  TORCH_CHECK(desc.dim() == 3 && desc.size(2) == N_DESC, "desc: (M, L, ", static_cast<int64_t>(N_DESC), ")");
  for (const at::Tensor* t : {&rowptr, &mid, &cols, &units, &desc, &colptr, &csc_e, &csc_r})
    TORCH_CHECK(t->is_contiguous() && t->scalar_type() == at::kLong, "index tensors: contiguous int64");
  const bool noisy = !noise.empty();
  TORCH_CHECK(!noisy || static_cast<int64_t>(noise.size()) == L - 1, "noise: one tensor per hidden layer");
  for (auto& t : noise) TORCH_CHECK(t.is_contiguous() && t.size(1) == B, "noise: contiguous (M, B, width)");

  float* P = params.data_ptr<float>();
  float* GR = grads.data_ptr<float>();
  float* EA = exp_avg.data_ptr<float>();
  float* EAS = exp_avg_sq.data_ptr<float>();
  const int64_t* RP = rowptr.data_ptr<int64_t>();
  const int64_t* MID = mid.data_ptr<int64_t>();
  const int64_t* COL = cols.data_ptr<int64_t>();
  const int64_t* UNIT = units.data_ptr<int64_t>();
  const int64_t* DS = desc.data_ptr<int64_t>();
  const int64_t* CP = colptr.data_ptr<int64_t>();
  const int64_t* CE = csc_e.data_ptr<int64_t>();
  const int64_t* CR = csc_r.data_ptr<int64_t>();
  float* WK = work.data_ptr<float>();
  const float* X = x.data_ptr<float>();
  const int64_t* Y = y.data_ptr<int64_t>();
  const float* SIG = sigma.data_ptr<float>();
  const bool* TANH = use_tanh.data_ptr<bool>();
  const float* SC = scale.data_ptr<float>();
  const float* SH = shift.data_ptr<float>();
  const double* LR = lr.data_ptr<double>();
  std::vector<const float*> NZ;
  for (auto& t : noise) NZ.push_back(t.data_ptr<float>());

  // Adam's scalars as torch._fused_adam_ computes them (double, then float)
  const double bc1 = 1 - std::pow(beta1, step);
  const double bc2 = 1 - std::pow(beta2, step);
  const float w1 = static_cast<float>(1 - beta1);
  const float b2 = static_cast<float>(beta2);
  const float w2 = static_cast<float>(1 - beta2);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float feps = static_cast<float>(eps);
  const float inv_b = 1.0f / static_cast<float>(B);

  auto loss = at::empty({M}, at::TensorOptions().dtype(at::kFloat));
  float* LOSS = loss.data_ptr<float>();

  at::parallel_for(0, M, 1, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      std::vector<Layer> ly(L);
      std::vector<v16> acc;  // column_backward's partial sums
      for (int64_t l = 0; l < L; ++l) {
        const int64_t* d = DS + (m * L + l) * N_DESC;
        Layer& a = ly[l];
        a.rows_off = d[ROWS_OFF];
        a.n_live = d[N_LIVE];
        a.n_rows = d[N_ROWS];
        a.n_const = a.n_rows - a.n_live;
        a.ptr = RP + d[PTR_OFF];
        a.width = d[WIDTH];
        a.cptr = CP + d[CPTR_OFF];
        a.A = WK + d[WS_OFF];
        a.H = a.A + a.n_live * B;
        a.G = a.H + a.n_live * B;
        a.Ac = a.G + a.n_live * B;
        a.Hc = a.Ac + a.n_const;
        a.Gc = a.Hc + a.n_const;
      }
      float* xt = WK + DS[(m * L) * N_DESC + XT_OFF];
      const float* xm = X + m * B * D;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t k = 0; k < D; ++k) xt[k * B + b] = xm[b * D + k];
      const float sc = SC[m], sh = SH[m], sig = SIG[m];
      const bool th = TANH[m];

      // ---------------------------------------------------------------- forward
      const float* prev_h = xt;
      const float* prev_c = nullptr;
      int64_t prev_live = D;
      for (int64_t l = 0; l < L; ++l) {
        Layer& a = ly[l];
        const bool hidden = l < L - 1;
        const float* nz = hidden && noisy && sig > 0.0f ? NZ[l] + m * B * a.width : nullptr;
        // h = (act(z) + sigma * noise) * scale - shift for live row r, act(z) already in A
        auto modulate = [&](int64_t r) {
          const float* ar = a.A + r * B;
          float* hr = a.H + r * B;
          if (nz != nullptr) {
            const int64_t u = UNIT[a.rows_off + r];
            for (int64_t b = 0; b < B; ++b) hr[b] = (ar[b] + sig * nz[b * a.width + u]) * sc - sh;
          } else {
            for (int64_t b = 0; b < B; ++b) hr[b] = ar[b] * sc - sh;
          }
        };
        // each row's bias plus its folded constant inputs, first for every row (the rows' chains of
        // multiply-adds are independent and overlap), kept in the row's first sample or in Ac
        // (four rows side by side: each row's chain in its own order, four chains in flight)
        auto fold_rows = [&](int64_t r0, int64_t n) {  // rows r0 .. r0 + n - 1, n <= 4
          float bc[4];
          int64_t e[4], e1[4], common = INT64_MAX;
          for (int64_t q = 0; q < n; ++q) {
            bc[q] = P[n_entries + a.rows_off + r0 + q];
            e[q] = MID[a.rows_off + r0 + q];
            e1[q] = a.ptr[r0 + q + 1];
            common = std::min(common, e1[q] - e[q]);
          }
          if (n == 4) {
            for (int64_t j = 0; j < common; ++j)
              for (int64_t q = 0; q < 4; ++q) bc[q] = std::fma(P[e[q] + j], prev_c[COL[e[q] + j] - prev_live], bc[q]);
            for (int64_t q = 0; q < 4; ++q) e[q] += common;
          }
          for (int64_t q = 0; q < n; ++q) {
            for (int64_t k = e[q]; k < e1[q]; ++k) bc[q] = std::fma(P[k], prev_c[COL[k] - prev_live], bc[q]);
            const int64_t r = r0 + q;
            (r < a.n_live ? a.A[r * B] : a.Ac[r - a.n_live]) = bc[q];
          }
        };
        for (int64_t r = 0; r < a.n_rows; r += 4) fold_rows(r, std::min<int64_t>(4, a.n_rows - r));
        const bool relu = hidden && !th;
        for (int64_t r = 0; r < a.n_live; ++r) {
          const int64_t e0 = a.ptr[r], em = MID[a.rows_off + r];
          if (relu && nz == nullptr) {  // modulated from the registers
            row_product(a.A[r * B], P + e0, COL + e0, em - e0, prev_h, B, true, a.A + r * B, a.H + r * B, sc, sh);
          } else {
            row_product(a.A[r * B], P + e0, COL + e0, em - e0, prev_h, B, relu, a.A + r * B);
            if (relu) modulate(r);  // while the row is in the first-level cache
          }
        }
        if (!hidden) break;
        if (th) {
          tanh_inplace(a.A, a.n_live * B);
          tanh_inplace(a.Ac, a.n_const);
          for (int64_t r = 0; r < a.n_live; ++r) modulate(r);
        } else {
          for (int64_t i = 0; i < a.n_const; ++i) a.Ac[i] = a.Ac[i] > 0.0f ? a.Ac[i] : 0.0f;
        }
        for (int64_t i = 0; i < a.n_const; ++i) a.Hc[i] = a.Ac[i] * sc - sh;
        prev_h = a.H;
        prev_c = a.Hc;
        prev_live = a.n_live;
      }

      // ---------------------------------------------------------------- loss and its gradient
      Layer& out = ly[L - 1];
      const int64_t C = out.n_live;
      double lsum = 0.0;
      for (int64_t b = 0; b < B; ++b) {
        float mx = out.A[b];
        for (int64_t c = 1; c < C; ++c) mx = std::max(mx, out.A[c * B + b]);
        float s = 0.0f;
        for (int64_t c = 0; c < C; ++c) s += std::exp(out.A[c * B + b] - mx);
        const float lse = std::log(s);
        const int64_t yb = Y[m * B + b];
        for (int64_t c = 0; c < C; ++c) {
          const float o = (out.A[c * B + b] - mx) - lse;  // log-softmax
          if (c == yb) lsum -= o;
          out.G[c * B + b] = (c == yb ? -inv_b : 0.0f) + std::exp(o) * inv_b;
        }
      }
      LOSS[m] = static_cast<float>(lsum / static_cast<double>(B));

      // ---------------------------------------------------------------- backward
      for (int64_t l = L - 1; l >= 0; --l) {
        Layer& a = ly[l];
        const bool hidden = l < L - 1;
        if (hidden) {  // gradient at the pre-activations: through shift, scale and act (live rows below)
          for (int64_t i = 0; i < a.n_const; ++i) {
            const float g = a.Gc[i] * sc;
            a.Gc[i] = th ? g * (1.0f - a.Ac[i] * a.Ac[i]) : (a.Ac[i] > 0.0f ? g : 0.0f);
          }
        }
        const float* ph = l > 0 ? ly[l - 1].H : xt;
        const float* pc = l > 0 ? ly[l - 1].Hc : nullptr;
        float* pg = l > 0 ? ly[l - 1].G : nullptr;
        float* pgc = l > 0 ? ly[l - 1].Gc : nullptr;
        const int64_t plive = l > 0 ? ly[l - 1].n_live : D;
        if (l > 0) std::fill(pgc, pgc + ly[l - 1].n_const, 0.0f);
        // rows: the gradient at each live row's pre-activations, the biases', the constant inputs'
        for (int64_t r = 0; r < a.n_rows; ++r) {
          const bool live = r < a.n_live;
          float* g = live ? a.G + r * B : nullptr;
          const float s = !live ? a.Gc[r - a.n_live] : hidden ? act_grad_sum(g, a.A + r * B, B, sc, th) : lane_sum(g, B);
          GR[n_entries + a.rows_off + r] = s;
          const int64_t em = MID[a.rows_off + r], e1 = a.ptr[r + 1];
          if (em < e1) const_backward(s, P + em, COL + em, e1 - em, plive, pc, pgc, GR + em);
        }
        // columns: the entries from live inputs, and the gradient at those inputs
        for (int64_t k = 0; k < plive; ++k) {
          const int64_t c0 = a.cptr[k], n = a.cptr[k + 1] - c0;
          float* gk = pg == nullptr ? nullptr : pg + k * B;
          if (n == 0) {
            if (gk != nullptr) std::fill(gk, gk + B, 0.0f);
            continue;
          }
          if (static_cast<int64_t>(acc.size()) < n) acc.resize(n);
          column_backward(CE + c0, CR + c0, n, a.G, P, ph + k * B, gk, GR, acc.data(), B);
        }
      }

      // ---------------------------------------------------------------- Adam
      const int64_t e_begin = ly[0].ptr[0], e_end = ly[L - 1].ptr[ly[L - 1].n_rows];
      const int64_t r_begin = n_entries + ly[0].rows_off;
      const int64_t r_end = n_entries + ly[L - 1].rows_off + ly[L - 1].n_rows;
      const float neg_step = static_cast<float>(-(LR[m] / bc1));
      auto adam = [&](int64_t i0, int64_t i1) {
        adam_update(P + i0, GR + i0, EA + i0, EAS + i0, i1 - i0, w1, b2, w2, bc2_sqrt, feps, neg_step);
      };
      adam(e_begin, e_end);
      adam(r_begin, r_end);
    }
  });
  return loss;
}

// ------------------------------------------------------------------------------------------------
// Pointwise kernels of the standard (dense-product) path, each one pass over memory where torch's
// operators take several (pruneplast/kernels/pointwise.py holds their autograd functions).

// One replica's block of relu_modulate: h = max(z, 0) * s - t over n floats.
inline void relu_modulate_block(const float* __restrict z, float* __restrict h, int64_t n, float s, float t) {
  for (int64_t i = 0; i < n; ++i) {
    const float a = z[i] < 0.0f ? 0.0f : z[i];  // as torch.relu: NaN and -0 kept
    h[i] = a * s - t;
  }
}

// One replica's block of its gradient at z: g * s where z > 0 (or NaN), else 0.
inline void relu_modulate_grad_block(const float* __restrict g, const float* __restrict z, float* __restrict o,
                                     int64_t n, float s) {
  for (int64_t i = 0; i < n; ++i) o[i] = z[i] <= 0.0f ? 0.0f : g[i] * s;
}

// h = max(z, 0) * scale[m] - shift[m] for replica m's block of n / M consecutive floats (z is laid
// out replica-major; the block's own order does not matter). The same two roundings as
// torch.relu(z) * scale - shift, so the same bits.
at::Tensor relu_modulate(at::Tensor z, at::Tensor scale, at::Tensor shift) {
  TORCH_CHECK(z.scalar_type() == at::kFloat && scale.is_contiguous() && shift.is_contiguous(), "float32 inputs");
  const int64_t M = z.size(0), n = z.numel(), per = n / M;
  TORCH_CHECK(z.stride(0) == per, "z: each replica's block must be contiguous");
  auto h = at::empty_like(z);
  const float* Z = z.data_ptr<float>();
  float* H = h.data_ptr<float>();
  const float* S = scale.data_ptr<float>();
  const float* T = shift.data_ptr<float>();
  at::parallel_for(0, M, 1, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) relu_modulate_block(Z + m * per, H + m * per, per, S[m], T[m]);
  });
  return h;
}

// The gradient at z of relu_modulate: g * scale[m] where z > 0 (or NaN), else 0; g laid out as z.
// The same bits as autograd's (grad * scale, then zero where the ReLU's output is <= 0).
at::Tensor relu_modulate_backward(at::Tensor g, at::Tensor z, at::Tensor scale) {
  const int64_t M = z.size(0), n = z.numel(), per = n / M;
  TORCH_CHECK(g.strides() == z.strides() && z.stride(0) == per, "g and z: the same replica-major layout");
  auto gz = at::empty_like(z);
  const float* G = g.data_ptr<float>();
  const float* Z = z.data_ptr<float>();
  float* O = gz.data_ptr<float>();
  const float* S = scale.data_ptr<float>();
  at::parallel_for(0, M, 1, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) relu_modulate_grad_block(G + m * per, Z + m * per, O + m * per, per, S[m]);
  });
  return gz;
}

// The constant-unit fold of a dense block: s[m, i] = sum_k t[m, i, k] c[m, k] (t (M, R, C), c (M, C)),
// each sum in 16 lanes (as lane_dot).
at::Tensor fold_forward(at::Tensor t, at::Tensor c) {
  TORCH_CHECK(t.is_contiguous() && c.is_contiguous() && t.scalar_type() == at::kFloat, "contiguous float32");
  const int64_t M = t.size(0), R = t.size(1), C = t.size(2);
  auto s = at::empty({M, R}, t.options());
  const float* TT = t.data_ptr<float>();
  const float* CC = c.data_ptr<float>();
  float* SS = s.data_ptr<float>();
  at::parallel_for(0, M, 1, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m)
      for (int64_t i = 0; i < R; ++i) SS[m * R + i] = lane_dot(TT + (m * R + i) * C, CC + m * C, C);
  });
  return s;
}

// One row of fold_backward: out[k] = (g c[k]) mask[k] (the mask's 0 or 1 as a float: the bits of
// autograd's gradient multiplied by a float mask), acc[k] += t[k] g.
inline void fold_row(float g, const float* __restrict t, const float* __restrict c, const uint8_t* __restrict mask,
                     float* __restrict out, float* __restrict acc, int64_t n) {
  for (int64_t k = 0; k < n; ++k) {
    out[k] = (g * c[k]) * static_cast<float>(mask[k]);
    acc[k] = std::fma(t[k], g, acc[k]);
  }
}

// Its gradients: at t, g[m, i] c[m, k] times mask[m, i, k]; at c, sum_i t[m, i, k] g[m, i]
// (rows in order, a fused multiply-add each). One pass over t and the mask.
std::vector<at::Tensor> fold_backward(at::Tensor g, at::Tensor t, at::Tensor c, at::Tensor mask) {
  TORCH_CHECK(g.is_contiguous() && t.is_contiguous() && c.is_contiguous() && mask.is_contiguous(), "contiguous");
  TORCH_CHECK(mask.scalar_type() == at::kBool, "mask: bool");
  const int64_t M = t.size(0), R = t.size(1), C = t.size(2);
  auto gt = at::empty_like(t);
  auto gc = at::zeros({M, C}, t.options());
  const float* GG = g.data_ptr<float>();
  const float* TT = t.data_ptr<float>();
  const float* CC = c.data_ptr<float>();
  const uint8_t* MK = reinterpret_cast<const uint8_t*>(mask.data_ptr<bool>());  // bytes of 0 or 1
  float* GT = gt.data_ptr<float>();
  float* GC = gc.data_ptr<float>();
  at::parallel_for(0, M, 1, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      const float* cm = CC + m * C;
      float* acc = GC + m * C;
      for (int64_t i = 0; i < R; ++i) {
        const int64_t off = (m * R + i) * C;
        fold_row(GG[m * R + i], TT + off, cm, MK + off, GT + off, acc, C);
      }
    }
  });
  return {gt, gc};
}

// ------------------------------------------------------------------------------------------------
// Products of a padded dense block over each replica's own units (pruneplast/kernels/compact.py,
// ragged_linear): replica m's rows[m] x cols[m] block only, so that its sums do not depend on how far
// the ensemble's largest replica padded the block. The same products, bias sums and masking, in the
// same order, as that module's Python loops (the path without this operator): the same bits; with
// the activation, the arithmetic of relu_modulate and its backward (pointwise.py) besides.

// zt (M, R, B): W h^T + b over each replica's block; its padded rows hold their bias. With scale and
// shift (M,), also the hidden layer's output h = relu_modulate(zt) (its padded rows too), each
// replica's block right after its product, while it is in cache: {zt, h} (h undefined without).
std::vector<at::Tensor> ragged_forward(at::Tensor w, at::Tensor ht, at::Tensor b, std::vector<int64_t> rows,
                                       std::vector<int64_t> cols, std::optional<at::Tensor> scale,
                                       std::optional<at::Tensor> shift) {
  const int64_t M = w.size(0), R = w.size(1), B = ht.size(2), per = R * B;
  TORCH_CHECK(static_cast<int64_t>(rows.size()) == M && static_cast<int64_t>(cols.size()) == M, "one extent a replica");
  const bool act = scale.has_value();
  TORCH_CHECK(act == shift.has_value(), "scale and shift together");
  if (act)
    TORCH_CHECK(scale->is_contiguous() && shift->is_contiguous() && scale->numel() == M && shift->numel() == M &&
                    w.scalar_type() == at::kFloat,
                "scale, shift: (M,) contiguous float32");
  auto zt = at::empty({M, R, B}, w.options());
  at::Tensor hn = act ? at::empty_like(zt) : at::Tensor();
  for (int64_t m = 0; m < M; ++m) {
    const int64_t r = rows[m], k = cols[m];
    auto out = zt[m].narrow(0, 0, r);
    at::addmm_out(out, b[m].narrow(0, 0, r).unsqueeze(1), w[m].narrow(0, 0, r).narrow(1, 0, k), ht[m].narrow(0, 0, k));
    if (r < R) zt[m].narrow(0, r, R - r).copy_(b[m].narrow(0, r, R - r).unsqueeze(1));
    if (act)
      relu_modulate_block(zt.data_ptr<float>() + m * per, hn.data_ptr<float>() + m * per, per,
                          scale->data_ptr<float>()[m], shift->data_ptr<float>()[m]);
  }
  return {zt, hn};
}

// out[i, j] *= mask[i, j] for an r x k block (row strides ldo, ldm): the mask's bytes of 0 or 1 as
// floats, so the bits of multiplying by a float mask.
inline void mask_block(float* __restrict out, int64_t ldo, const uint8_t* __restrict mask, int64_t ldm, int64_t r,
                       int64_t k) {
  for (int64_t i = 0; i < r; ++i) {
    float* o = out + i * ldo;
    const uint8_t* mk = mask + i * ldm;
    for (int64_t j = 0; j < k; ++j) o[j] = o[j] * static_cast<float>(mk[j]);
  }
}

// Its gradients at h^T (zero at padded inputs), at W (zero at padded entries, and multiplied by the
// bool mask (M, R, K) where one is given, each replica's block while it is in cache) and at b (each
// replica's row sums, torch's sum over its own block), each where asked for: {gh, gw, gb}. With z
// (ragged_forward's zt) and scale, g is the gradient at its output h, and each replica's gradient
// at zt is taken from it (relu_modulate_backward's arithmetic) just before that replica's products.
std::vector<at::Tensor> ragged_backward(at::Tensor g, at::Tensor w, at::Tensor ht, std::vector<int64_t> rows,
                                        std::vector<int64_t> cols, bool need_h, bool need_w, bool need_b,
                                        std::optional<at::Tensor> mask, std::optional<at::Tensor> z,
                                        std::optional<at::Tensor> scale) {
  const int64_t M = w.size(0), R = w.size(1), K = w.size(2);
  TORCH_CHECK(static_cast<int64_t>(rows.size()) == M && static_cast<int64_t>(cols.size()) == M, "one extent a replica");
  if (mask.has_value())
    TORCH_CHECK(mask->scalar_type() == at::kBool && mask->is_contiguous() && mask->sizes() == w.sizes() &&
                    w.is_contiguous(),
                "mask: contiguous bool, shaped as w (contiguous)");
  const bool act = z.has_value();
  TORCH_CHECK(act == scale.has_value(), "z and scale together");
  at::Tensor gzt = g;
  if (act) {
    TORCH_CHECK(z->is_contiguous() && scale->is_contiguous() && scale->numel() == M, "z contiguous, scale (M,)");
    g = g.contiguous();
    gzt = at::empty_like(*z);
  }
  const int64_t per = act ? z->numel() / M : 0;
  at::Tensor gh = need_h ? at::empty_like(ht) : at::Tensor();
  at::Tensor gw = need_w ? at::empty_like(w) : at::Tensor();
  at::Tensor gb = need_b ? at::empty({M, R}, w.options()) : at::Tensor();
  for (int64_t m = 0; m < M; ++m) {  // a replica's gradients together, while its gradient is in cache
    const int64_t r = rows[m], k = cols[m];
    if (act)
      relu_modulate_grad_block(g.data_ptr<float>() + m * per, z->data_ptr<float>() + m * per,
                               gzt.data_ptr<float>() + m * per, per, scale->data_ptr<float>()[m]);
    if (need_b) {
      auto out = gb[m];
      at::sum_out(out, gzt[m], 1);  // each row's sum alone: the bits of gzt.sum(2)
    }
    if (need_h) {
      auto out = gh[m].narrow(0, 0, k);
      at::mm_out(out, w[m].narrow(0, 0, r).narrow(1, 0, k).t(), gzt[m].narrow(0, 0, r));
      if (k < K) gh[m].narrow(0, k, K - k).fill_(0);
    }
    if (need_w) {
      auto out = gw[m].narrow(0, 0, r).narrow(1, 0, k);
      at::mm_out(out, gzt[m].narrow(0, 0, r), ht[m].narrow(0, 0, k).t());
      if (mask.has_value())
        mask_block(gw.data_ptr<float>() + m * R * K, K,
                   reinterpret_cast<const uint8_t*>(mask->data_ptr<bool>()) + m * R * K, K, r, k);
      if (r < R) gw[m].narrow(0, r, R - r).fill_(0);
      if (k < K) gw[m].narrow(0, 0, r).narrow(1, k, K - k).fill_(0);
    }
  }
  return {gh, gw, gb};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, mod) {
  mod.def("step", &fused_step, "forward, backward and Adam for a sparse ensemble (see fused.py)");
  mod.def("relu_modulate", &relu_modulate, "max(z, 0) * scale - shift per replica (see pointwise.py)");
  mod.def("relu_modulate_backward", &relu_modulate_backward, "its gradient at z");
  mod.def("fold_forward", &fold_forward, "the constant-unit fold of a dense block");
  mod.def("fold_backward", &fold_backward, "its gradients at the weights (masked) and the constants");
  mod.def("ragged_forward", &ragged_forward,
          "a padded dense block's product over each replica's own units (and its activation)");
  mod.def("ragged_backward", &ragged_backward, "its gradients at the inputs, the weights and the bias");
}
