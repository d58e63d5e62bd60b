/* GroupNorm followed by SiLU, in one pass over channels-last (NHWC) bf16 activations on a CPU.
 *
 * Why it exists: on a CPU with bf16 matrix units, oneDNN's convolutions work in NHWC order. A network kept
 * in NCHW order pays for a copy of every convolution's input, and of its output's gradient, into NHWC
 * order; a network kept in NHWC order needs a GroupNorm that is fast in NHWC order, which PyTorch's CPU
 * kernels are not (bf16 in NHWC order is several times slower than in NCHW). In NHWC order each pixel's
 * channels lie side by side, so the natural loop keeps one running sum per channel over all pixels and
 * combines the channels of a group at the end; that loop vectorises across channels.
 *
 * x, y, dx, dy: (B, N, C) bf16 as raw 16-bit words: B images of N pixels of C channels. G groups of
 * K = C / G channels. An optional shift (B, C) in single precision is added to every pixel of a channel
 * before the statistics (the time embedding's projection of a residual block: GN(h + W e_t) without writing
 * h + W e_t out first); x' = x + shift_c, or x itself without one. For image b and group g, over its N K values:
 *
 *   mean  mu = sum(x') / (N K),   var = sum(x'^2) / (N K) - mu^2,   rstd r = 1 / sqrt(var + eps)
 *   z = gamma_c (x' - mu) r + beta_c = a_c x + s_c,   with a_c = gamma_c r and s_c = beta_c - mu a_c + a_c shift_c
 *   y = z sigmoid(z)  (SiLU; or y = z when silu is 0)
 *
 * Backward, with dz = dy sigmoid(z) (1 + z (1 - sigmoid(z))) (or dz = dy) and, per channel,
 * A_c = sum(dz), B_c = sum(dz x') = sum(dz x) + shift_c A_c over the image's pixels:
 *
 *   dbeta_c  = A_c,   dgamma_c = r (B_c - mu A_c)
 *   dx = r (gamma_c dz - m1 - (x' - mu) r m2) = a_c dz + q x' + t = a_c dz + q x + (t + q shift_c),
 *   where over the group
 *   m1 = sum_c gamma_c A_c / (N K),   m2 = r sum_c gamma_c (B_c - mu A_c) / (N K),
 *   q = -r^2 m2,   t = -r m1 + mu r^2 m2,
 *   dshift_c = sum(dx) over the pixels = a_c A_c + q sum(x') + N t, with sum(x') = sum(x) + N shift_c.
 *
 * When x also feeds a residual connection, its gradient there, dp, may be passed: dx + dp is written instead of dx,
 * in the same pass (autograd would otherwise add the two in a pass of its own over the whole tensor).
 *
 * Sums run in single precision over CHUNK pixels at a time (which vectorises twice as wide) and are added up
 * in double precision; the per-image results go to dgamma and dbeta as (B, C) rows for the caller to add up,
 * and to dshift as its (B, C) gradient.
 * Images are shared among `threads` OpenMP threads. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define CHUNK 64 /* pixels summed in single precision before their sums join the double-precision ones */
#define AHEAD 16 /* pixels: how far ahead of a pass its input is asked into the cache */

static inline float bf16_to_float(uint16_t h) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}

static inline uint16_t float_to_bf16(float f) { /* round to nearest, ties to even */
    union { uint32_t u; float f; } v;
    v.f = f;
    return (uint16_t)((v.u + 0x7FFFu + ((v.u >> 16) & 1u)) >> 16);
}

/* e^-z = 2^x with x = -z log2(e), to a relative error below 1e-4, far below bf16's 4e-3: x = n + r with n the
 * nearest integer and |r| <= 1/2, 2^r = e^(r ln 2) by its Taylor series to the fourth power, and 2^n written straight
 * into the float's exponent. Every step vectorises. */
static inline float exp_minus(float z) {
    float x = fminf(fmaxf(-1.44269504f * z, -126.0f), 126.0f), n = rintf(x), r = x - n;
    float p = 1.0f + r * (6.93147181e-1f + r * (2.40226507e-1f + r * (5.55041087e-2f + r * 9.61812911e-3f)));
    union { uint32_t u; float f; } two_to_n;
    two_to_n.u = (uint32_t)((int32_t)n + 127) << 23;
    return p * two_to_n.f;
}

static inline float sigmoid(float z) { return 1.0f / (1.0f + exp_minus(z)); }

/* Ask the cache for pixel n + AHEAD of an image of rows of C bf16 values, a 64-byte line (32 values) at a time. The
 * hardware's prefetcher stops at every 4 KiB page, and the backward pass reads x long after the forward pass wrote
 * it: with x and dy asked for ahead, a training step at batch 128 took 0.92-0.95x the time (in-process A/B, two
 * builds in turn). A prefetch never faults, so asking past the image's end is harmless. */
static inline void fetch_ahead(const uint16_t *image, int64_t n, int64_t C) {
    for (int64_t k = 0; k < C; k += 32)
        __builtin_prefetch(image + (n + AHEAD) * C + k);
}

/* total[i] += partial[i], then partial[i] = 0: a chunk's single-precision sums join the double-precision ones. */
static void add_and_clear(float *partial, double *total, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        total[i] += partial[i];
        partial[i] = 0.0f;
    }
}

/* Sixteen channels at a time with AVX-512, where the build targets a CPU with it and its bf16 instructions (as
 * -march=native does on such a CPU), for images whose C is a multiple of 16 (every width of the networks): the
 * passes below hand their loops to the *_lanes versions, which compute the same equations. The compiler vectorises
 * the scalar loops too, but spends more instructions, and these passes are bound by arithmetic, not memory: it
 * rounds to bf16 with four integer operations where vcvtneps2bf16 is one, makes 2^n from integer operations (and a
 * clamp) where vscalefps is one, and refines 1 / (1 + e^-z) by a Newton step where vrcp14ps alone is within 2^-14,
 * far below bf16's 2^-8. Over the GroupNorm shapes of a training step the forward pass took 0.65-0.7x and the
 * backward pass 0.7-0.8x the time of the scalar loops, and a training step at batch 32 or 128 0.96-0.97x (two builds
 * timed in turn: benchmarks/kernel_builds.py). */
#if defined(__AVX512F__) && defined(__AVX512BF16__)
#include <immintrin.h>
#define LANES 16

static inline __m512 load_lanes(const uint16_t *p) { /* 16 bf16 values as floats: their bits moved up 16 places */
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

static inline void store_lanes(uint16_t *p, __m512 v) { /* rounded to nearest, ties to even, as float_to_bf16 */
    _mm256_storeu_si256((__m256i *)p, (__m256i)_mm512_cvtneps_pbh(v));
}

/* sigmoid(z) = 1 / (1 + 2^n 2^r) as exp_minus computes it; vscalefps gives +inf or 0 past float's range, so no clamp. */
static inline __m512 sigmoid_lanes(__m512 z) {
    __m512 x = _mm512_mul_ps(z, _mm512_set1_ps(-1.44269504f));
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), r = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(9.61812911e-3f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.55041087e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.40226507e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.93147181e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_rcp14_ps(_mm512_add_ps(_mm512_scalef_ps(p, n), _mm512_set1_ps(1.0f)));
}

/* normalise's loop: y = SiLU(a_c x + s_c), or a_c x + s_c. */
static inline void normalise_lanes(const uint16_t *xb, uint16_t *yb, int64_t N, int64_t C, const float *a,
                                   const float *s, const int silu) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c += LANES) {
            __m512 z = _mm512_fmadd_ps(load_lanes(xb + n * C + c), _mm512_loadu_ps(a + c), _mm512_loadu_ps(s + c));
            store_lanes(yb + n * C + c, silu ? _mm512_mul_ps(z, sigmoid_lanes(z)) : z);
        }
}

/* output_gradient's loop over one chunk of pixels: dz, and the partial sums fa += dz, fb += dz x', fx += x'. */
static inline void output_gradient_lanes(const uint16_t *xb, const uint16_t *dyb, const float *shift, int64_t start,
                                         int64_t end, int64_t C, const float *a, const float *s, float *dz, float *fa,
                                         float *fb, float *fx, const int silu) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t n = start; n < end; n++) {
        fetch_ahead(xb, n, C);
        fetch_ahead(dyb, n, C);
        for (int64_t c = 0; c < C; c += LANES) {
            __m512 v = _mm512_add_ps(load_lanes(xb + n * C + c), _mm512_loadu_ps(shift + c));
            __m512 z = _mm512_fmadd_ps(v, _mm512_loadu_ps(a + c), _mm512_loadu_ps(s + c)), d = load_lanes(dyb + n * C + c);
            if (silu) { /* dy sigmoid(z) (1 + z (1 - sigmoid(z))) */
                __m512 sg = sigmoid_lanes(z);
                d = _mm512_mul_ps(_mm512_mul_ps(d, sg), _mm512_fmadd_ps(z, _mm512_sub_ps(one, sg), one));
            }
            _mm512_storeu_ps(dz + n * C + c, d);
            _mm512_storeu_ps(fa + c, _mm512_add_ps(_mm512_loadu_ps(fa + c), d));
            _mm512_storeu_ps(fb + c, _mm512_fmadd_ps(d, v, _mm512_loadu_ps(fb + c)));
            _mm512_storeu_ps(fx + c, _mm512_add_ps(_mm512_loadu_ps(fx + c), v));
        }
    }
}

/* input_gradient's loop: dx = a_c dz + q x + t_c, plus dp when passed. */
static inline void input_gradient_lanes(const uint16_t *xb, const float *dz, const uint16_t *dpb, uint16_t *dxb,
                                        int64_t N, int64_t C, const float *a, const float *q, const float *t,
                                        const int passed) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c += LANES) {
            __m512 qx = _mm512_fmadd_ps(load_lanes(xb + n * C + c), _mm512_loadu_ps(q + c), _mm512_loadu_ps(t + c));
            __m512 d = _mm512_fmadd_ps(_mm512_loadu_ps(dz + n * C + c), _mm512_loadu_ps(a + c), qx);
            store_lanes(dxb + n * C + c, passed ? _mm512_add_ps(d, load_lanes(dpb + n * C + c)) : d);
        }
}
#endif

/* sums[c] += sum of x', sums[C + c] += sum of x'^2 over an image's N pixels (rows of C channels), with
 * x' = x + shift_c. */
static inline void channel_sums(const uint16_t *xb, const float *shift, int64_t N, int64_t C, double *sums) {
    float *f1 = calloc(2 * C, sizeof(float)), *f2 = f1 + C;
    for (int64_t start = 0; start < N; start += CHUNK) {
        int64_t end = start + CHUNK < N ? start + CHUNK : N;
        for (int64_t n = start; n < end; n++) {
            fetch_ahead(xb, n, C);
            for (int64_t c = 0; c < C; c++) {
                float v = bf16_to_float(xb[n * C + c]) + shift[c];
                f1[c] += v;
                f2[c] += v * v;
            }
        }
        add_and_clear(f1, sums, 2 * C);
    }
    free(f1);
}

/* Per-group mean and rstd of an image from its per-channel sums, and each channel's a_c and s_c. */
static void group_statistics(const double *s1, const double *s2, const float *gamma, const float *beta,
                             const float *shift, int64_t N, int64_t C, int64_t G, float eps, float *mean, float *rstd,
                             float *a, float *s) {
    int64_t K = C / G;
    double count = (double)(N * K);
    for (int64_t g = 0; g < G; g++) {
        double sum = 0.0, squares = 0.0;
        for (int64_t c = g * K; c < (g + 1) * K; c++) {
            sum += s1[c];
            squares += s2[c];
        }
        double mu = sum / count, var = squares / count - mu * mu;
        float r = 1.0f / sqrtf((float)(var > 0.0 ? var : 0.0) + eps);
        mean[g] = (float)mu;
        rstd[g] = r;
        for (int64_t c = g * K; c < (g + 1) * K; c++) {
            a[c] = gamma[c] * r;
            s[c] = beta[c] - (float)mu * a[c] + a[c] * shift[c];
        }
    }
}

/* y = SiLU(a_c x + s_c), or a_c x + s_c; inlined once for each value of silu, so neither loop branches. */
static inline void normalise(const uint16_t *xb, uint16_t *yb, int64_t N, int64_t C, const float *a, const float *s,
                             const int silu) {
#ifdef LANES
    if (C % LANES == 0) {
        normalise_lanes(xb, yb, N, C, a, s, silu);
        return;
    }
#endif
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            float z = bf16_to_float(xb[n * C + c]) * a[c] + s[c];
            yb[n * C + c] = float_to_bf16(silu ? z * sigmoid(z) : z);
        }
}

/* One image of the forward pass: its statistics, then y. Inlined where C is a constant (see WIDTH_CASES). */
static inline __attribute__((always_inline)) void forward_image(const uint16_t *xb, uint16_t *yb, const float *gamma,
                                                                const float *beta, const float *sh, float *mean,
                                                                float *rstd, int64_t N, int64_t C, int64_t G,
                                                                float eps, int silu) {
    double *s1 = calloc(2 * C, sizeof(double)), *s2 = s1 + C;
    float *a = malloc(2 * C * sizeof(float)), *s = a + C;
    channel_sums(xb, sh, N, C, s1);
    group_statistics(s1, s2, gamma, beta, sh, N, C, G, eps, mean, rstd, a, s);
    if (silu)
        normalise(xb, yb, N, C, a, s, 1);
    else
        normalise(xb, yb, N, C, a, s, 0);
    free(s1);
    free(a);
}

/* The loops over an image's channels run fastest when the compiler knows how many there are: at C = 32 two
 * vector registers hold a pixel, and a loop of unknown length adds its bookkeeping to every pixel. So each pass
 * is compiled once for each width of the networks' levels and once for any other, by a switch on the C in scope:
 * over the GroupNorm shapes of a training step the forward pass took 1.1x and the backward pass 1.2-1.3x as long
 * with one build for every width (two builds timed in turn). */
#define WIDTH_CASES(call)         \
    switch (C) {                  \
    case 32: call(32); break;     \
    case 64: call(64); break;     \
    case 96: call(96); break;     \
    case 128: call(128); break;   \
    default: call(C);             \
    }

/* shift: (B, C), or NULL for none. */
void group_norm_silu_forward(const uint16_t *x, uint16_t *y, const float *gamma, const float *beta,
                             const float *shift, float *mean, float *rstd, int64_t B, int64_t N, int64_t C, int64_t G,
                             float eps, int silu, int threads) {
    float *none = calloc(C, sizeof(float)); /* the shift when there is none, shared by every image */
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t b = 0; b < B; b++) {
        const float *sh = shift ? shift + b * C : none;
#define FORWARD(width) \
    forward_image(x + b * N * C, y + b * N * C, gamma, beta, sh, mean + b * G, rstd + b * G, N, width, G, eps, silu)
        WIDTH_CASES(FORWARD)
#undef FORWARD
    }
    free(none);
}

/* dz for every pixel and channel, and the per-channel sums over the image's pixels, with x' = x + shift_c:
 * sums[c] += A_c = sum(dz), sums[C + c] += B_c = sum(dz x'), sums[2 C + c] += sum(x'). */
static inline void output_gradient(const uint16_t *xb, const uint16_t *dyb, const float *shift, int64_t N, int64_t C,
                                   const float *a, const float *s, float *dz, double *sums, const int silu) {
    float *fa = calloc(3 * C, sizeof(float)), *fb = fa + C, *fx = fb + C;
    for (int64_t start = 0; start < N; start += CHUNK) {
        int64_t end = start + CHUNK < N ? start + CHUNK : N;
#ifdef LANES
        if (C % LANES == 0) {
            output_gradient_lanes(xb, dyb, shift, start, end, C, a, s, dz, fa, fb, fx, silu);
            add_and_clear(fa, sums, 3 * C);
            continue;
        }
#endif
        for (int64_t n = start; n < end; n++) {
            fetch_ahead(xb, n, C);
            fetch_ahead(dyb, n, C);
            for (int64_t c = 0; c < C; c++) {
                float v = bf16_to_float(xb[n * C + c]) + shift[c], z = v * a[c] + s[c];
                float g = bf16_to_float(dyb[n * C + c]);
                float sg = silu ? sigmoid(z) : 0.0f, d = silu ? g * sg * (1.0f + z * (1.0f - sg)) : g;
                dz[n * C + c] = d;
                fa[c] += d;
                fb[c] += d * v;
                fx[c] += v;
            }
        }
        add_and_clear(fa, sums, 3 * C);
    }
    free(fa);
}

/* dgamma, dbeta and the coefficients q, t of dx = a_c dz + q x' + t for each group of one image. */
static void group_gradients(const double *A, const double *Bx, const float *gamma, const float *mean,
                            const float *rstd, int64_t N, int64_t C, int64_t G, float *dgamma, float *dbeta, float *q,
                            float *t) {
    int64_t K = C / G;
    double count = (double)(N * K);
    for (int64_t g = 0; g < G; g++) {
        double mu = mean[g], r = rstd[g], m1 = 0.0, m2 = 0.0;
        for (int64_t c = g * K; c < (g + 1) * K; c++) {
            m1 += gamma[c] * A[c];
            m2 += gamma[c] * (Bx[c] - mu * A[c]);
            dgamma[c] = (float)(r * (Bx[c] - mu * A[c]));
            dbeta[c] = (float)A[c];
        }
        m1 /= count;
        m2 = r * m2 / count;
        for (int64_t c = g * K; c < (g + 1) * K; c++) {
            q[c] = (float)(-r * r * m2);
            t[c] = (float)(-r * m1 + mu * r * r * m2);
        }
    }
}

/* dshift_c = sum of dx over the pixels = a_c A_c + q sum(x') + N t, and t_c = t + q shift_c, so that
 * dx = a_c dz + q x + t_c for the stored x. */
static void shift_gradient(const double *A, const double *Sx, const float *a, const float *q, const float *shift,
                           int64_t N, int64_t C, float *t, float *dshift) {
    for (int64_t c = 0; c < C; c++) {
        if (dshift)
            dshift[c] = (float)(a[c] * A[c] + q[c] * Sx[c] + (double)N * t[c]);
        t[c] += q[c] * shift[c];
    }
}

/* dx = a_c dz + q x + t_c, plus dp, the gradient of the input's other uses, when passed (added: a residual
 * connection's input gets both gradients in the one pass that writes dx). */
static inline void input_gradient(const uint16_t *xb, const float *dz, const uint16_t *dpb, uint16_t *dxb, int64_t N,
                                  int64_t C, const float *a, const float *q, const float *t, const int passed) {
#ifdef LANES
    if (C % LANES == 0) {
        input_gradient_lanes(xb, dz, dpb, dxb, N, C, a, q, t, passed);
        return;
    }
#endif
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            float d = dz[n * C + c] * a[c] + bf16_to_float(xb[n * C + c]) * q[c] + t[c];
            dxb[n * C + c] = float_to_bf16(passed ? d + bf16_to_float(dpb[n * C + c]) : d);
        }
}

/* One image of the backward pass: dz and its sums, the group gradients, then dx. Inlined as forward_image is. */
static inline __attribute__((always_inline)) void backward_image(const uint16_t *xb, const uint16_t *dyb,
                                                                 const uint16_t *dpb, uint16_t *dxb,
                                                                 const float *gamma, const float *beta,
                                                                 const float *sh, const float *mean,
                                                                 const float *rstd, float *dgamma, float *dbeta,
                                                                 float *dshift, int64_t N, int64_t C, int64_t G,
                                                                 int silu) {
    double *A = calloc(3 * C, sizeof(double)), *Bx = A + C, *Sx = Bx + C;
    float *a = malloc(4 * C * sizeof(float)), *s = a + C, *q = s + C, *t = q + C;
    float *dz = malloc(N * C * sizeof(float));
    for (int64_t c = 0; c < C; c++) {
        a[c] = gamma[c] * rstd[c / (C / G)];
        s[c] = beta[c] - mean[c / (C / G)] * a[c];
    }
    if (silu)
        output_gradient(xb, dyb, sh, N, C, a, s, dz, A, 1);
    else
        output_gradient(xb, dyb, sh, N, C, a, s, dz, A, 0);
    group_gradients(A, Bx, gamma, mean, rstd, N, C, G, dgamma, dbeta, q, t);
    shift_gradient(A, Sx, a, q, sh, N, C, t, dshift);
    if (dpb)
        input_gradient(xb, dz, dpb, dxb, N, C, a, q, t, 1);
    else
        input_gradient(xb, dz, dpb, dxb, N, C, a, q, t, 0);
    free(A);
    free(a);
    free(dz);
}

/* shift: (B, C), or NULL for none, when dshift is NULL too. dp: (B, N, C), or NULL for none. */
void group_norm_silu_backward(const uint16_t *x, const uint16_t *dy, const uint16_t *dp, uint16_t *dx,
                              const float *gamma, const float *beta, const float *shift, const float *mean,
                              const float *rstd, float *dgamma, float *dbeta, float *dshift, int64_t B, int64_t N,
                              int64_t C, int64_t G, int silu, int threads) {
    float *none = calloc(C, sizeof(float)); /* the shift when there is none, shared by every image */
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t b = 0; b < B; b++) {
        const float *sh = shift ? shift + b * C : none;
#define BACKWARD(width)                                                                                              \
    backward_image(x + b * N * C, dy + b * N * C, dp ? dp + b * N * C : NULL, dx + b * N * C, gamma, beta, sh,       \
                   mean + b * G, rstd + b * G, dgamma + b * C, dbeta + b * C, dshift ? dshift + b * C : NULL, N,     \
                   width, G, silu)
        WIDTH_CASES(BACKWARD)
#undef BACKWARD
    }
    free(none);
}
