// Body of one int8 ISA translation unit, included inside namespace rnnkit::<isa> by
// int8_generic.cpp / int8_avx2.cpp / int8_vnni.cpp, which define RNNKIT_INT8_KIND:
// 0 portable C++, 1 AVX2 (vpmaddwd on sign-extended weights: exact, unlike vpmaddubsw, whose
// 16-bit pair sums saturate), 2 AVX-512 VNNI (vpdpbusd). Only the integer dot products differ
// between units; the quantisation and gate arithmetic are the same plain C++ (no FMA
// contraction under -std=c++20), so every unit returns the same bits.

constexpr int kRows = 16;   // output rows per packed block
constexpr int kChunk = 32;  // activation rows per pass of the input projection

static inline int32_t load4(const uint8_t* p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

// out[a * out_stride + 16 * blk + r] = sum_k act[a * act_stride + k] * W[16 * blk + r][k] for
// blocks blk in [b0, b1) and activation rows a in [0, nact); kg groups of 4 inputs per row.
// k is a long: under -fwrapv (Python's build flags) an int offset such as 64 * k may wrap, so
// the compiler would redo its multiply and sign extension for every load.
static void dot_blocks(const int8_t* w, int kg, int b0, int b1, const uint8_t* act,
                       long act_stride, int nact, int32_t* out, long out_stride) {
    for (int blk = b0; blk < b1; blk++) {
        const int8_t* wb = w + (long)blk * kg * 64;
        int32_t* ob = out + (long)blk * kRows;
#if RNNKIT_INT8_KIND == 2
        // Four blocks by four activation rows (the input projection): sixteen accumulators,
        // each weight load feeding four rows and each broadcast four blocks.
        if (blk + 3 < b1 && nact >= 4) {
            const long step = (long)kg * 64;
            int a = 0;
            for (; a + 4 <= nact; a += 4) {
                const uint8_t* p = act + a * act_stride;
                __m512i c[16];
                for (int i = 0; i < 16; i++) c[i] = _mm512_setzero_si512();
                for (long k = 0; k < kg; k++) {
                    __m512i w4[4];
                    for (int j = 0; j < 4; j++) w4[j] = _mm512_loadu_si512(wb + j * step + 64 * k);
                    for (int i = 0; i < 4; i++) {
                        const __m512i v = _mm512_set1_epi32(load4(p + i * act_stride + 4 * k));
                        for (int j = 0; j < 4; j++)
                            c[4 * i + j] = _mm512_dpbusd_epi32(c[4 * i + j], v, w4[j]);
                    }
                }
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++)
                        _mm512_storeu_si512(ob + (a + i) * out_stride + j * kRows, c[4 * i + j]);
            }
            if (a == nact) {
                blk += 3;
                continue;
            }
            // Leftover rows (fewer than four) of these four blocks: two blocks at a time below.
            for (int j = 0; j < 4; j += 2) {
                const int8_t* w0 = wb + j * step;
                const int8_t* w1 = w0 + step;
                for (int r = a; r < nact; r++) {
                    const uint8_t* p = act + r * act_stride;
                    __m512i c0 = _mm512_setzero_si512(), c1 = c0;
                    for (long k = 0; k < kg; k++) {
                        const __m512i v = _mm512_set1_epi32(load4(p + 4 * k));
                        c0 = _mm512_dpbusd_epi32(c0, v, _mm512_loadu_si512(w0 + 64 * k));
                        c1 = _mm512_dpbusd_epi32(c1, v, _mm512_loadu_si512(w1 + 64 * k));
                    }
                    _mm512_storeu_si512(ob + r * out_stride + j * kRows, c0);
                    _mm512_storeu_si512(ob + r * out_stride + (j + 1) * kRows, c1);
                }
            }
            blk += 3;
            continue;
        }
        // Two blocks at a time where there are two: eight independent accumulator chains hide
        // vpdpbusd's latency, and each activation broadcast feeds two blocks.
        if (blk + 1 < b1) {
            const int8_t* wc = wb + (long)kg * 64;
            int a = 0;
            for (; a + 4 <= nact; a += 4) {
                const uint8_t* p = act + a * act_stride;
                __m512i c[8];
                for (int i = 0; i < 8; i++) c[i] = _mm512_setzero_si512();
                for (long k = 0; k < kg; k++) {
                    const __m512i w0 = _mm512_loadu_si512(wb + 64 * k);
                    const __m512i w1 = _mm512_loadu_si512(wc + 64 * k);
                    for (int i = 0; i < 4; i++) {
                        const __m512i v = _mm512_set1_epi32(load4(p + i * act_stride + 4 * k));
                        c[i] = _mm512_dpbusd_epi32(c[i], v, w0);
                        c[4 + i] = _mm512_dpbusd_epi32(c[4 + i], v, w1);
                    }
                }
                for (int i = 0; i < 4; i++) {
                    _mm512_storeu_si512(ob + (a + i) * out_stride, c[i]);
                    _mm512_storeu_si512(ob + (a + i) * out_stride + kRows, c[4 + i]);
                }
            }
            for (; a < nact; a++) {
                const uint8_t* p = act + a * act_stride;
                __m512i c[8];
                for (int i = 0; i < 8; i++) c[i] = _mm512_setzero_si512();
                long k = 0;
                for (; k + 4 <= kg; k += 4) {
                    for (int i = 0; i < 4; i++) {
                        const __m512i v = _mm512_set1_epi32(load4(p + 4 * (k + i)));
                        c[i] = _mm512_dpbusd_epi32(c[i], v, _mm512_loadu_si512(wb + 64 * (k + i)));
                        c[4 + i] = _mm512_dpbusd_epi32(c[4 + i], v,
                                                       _mm512_loadu_si512(wc + 64 * (k + i)));
                    }
                }
                for (; k < kg; k++) {
                    const __m512i v = _mm512_set1_epi32(load4(p + 4 * k));
                    c[0] = _mm512_dpbusd_epi32(c[0], v, _mm512_loadu_si512(wb + 64 * k));
                    c[4] = _mm512_dpbusd_epi32(c[4], v, _mm512_loadu_si512(wc + 64 * k));
                }
                _mm512_storeu_si512(ob + a * out_stride,
                                    _mm512_add_epi32(_mm512_add_epi32(c[0], c[1]),
                                                     _mm512_add_epi32(c[2], c[3])));
                _mm512_storeu_si512(ob + a * out_stride + kRows,
                                    _mm512_add_epi32(_mm512_add_epi32(c[4], c[5]),
                                                     _mm512_add_epi32(c[6], c[7])));
            }
            blk++;
            continue;
        }
        int a = 0;
        for (; a + 4 <= nact; a += 4) {  // four rows share each weight load
            const uint8_t* p = act + a * act_stride;
            __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0;
            for (long k = 0; k < kg; k++) {
                const __m512i wv = _mm512_loadu_si512(wb + 64 * k);
                c0 = _mm512_dpbusd_epi32(c0, _mm512_set1_epi32(load4(p + 4 * k)), wv);
                c1 = _mm512_dpbusd_epi32(c1, _mm512_set1_epi32(load4(p + act_stride + 4 * k)), wv);
                c2 = _mm512_dpbusd_epi32(c2, _mm512_set1_epi32(load4(p + 2 * act_stride + 4 * k)), wv);
                c3 = _mm512_dpbusd_epi32(c3, _mm512_set1_epi32(load4(p + 3 * act_stride + 4 * k)), wv);
            }
            _mm512_storeu_si512(ob + a * out_stride, c0);
            _mm512_storeu_si512(ob + (a + 1) * out_stride, c1);
            _mm512_storeu_si512(ob + (a + 2) * out_stride, c2);
            _mm512_storeu_si512(ob + (a + 3) * out_stride, c3);
        }
        for (; a < nact; a++) {  // one row (batch 1): four chains over k hide the latency
            const uint8_t* p = act + a * act_stride;
            __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0;
            long k = 0;
            for (; k + 4 <= kg; k += 4) {
                c0 = _mm512_dpbusd_epi32(c0, _mm512_set1_epi32(load4(p + 4 * k)),
                                         _mm512_loadu_si512(wb + 64 * k));
                c1 = _mm512_dpbusd_epi32(c1, _mm512_set1_epi32(load4(p + 4 * k + 4)),
                                         _mm512_loadu_si512(wb + 64 * k + 64));
                c2 = _mm512_dpbusd_epi32(c2, _mm512_set1_epi32(load4(p + 4 * k + 8)),
                                         _mm512_loadu_si512(wb + 64 * k + 128));
                c3 = _mm512_dpbusd_epi32(c3, _mm512_set1_epi32(load4(p + 4 * k + 12)),
                                         _mm512_loadu_si512(wb + 64 * k + 192));
            }
            for (; k < kg; k++)
                c0 = _mm512_dpbusd_epi32(c0, _mm512_set1_epi32(load4(p + 4 * k)),
                                         _mm512_loadu_si512(wb + 64 * k));
            const __m512i sum = _mm512_add_epi32(_mm512_add_epi32(c0, c1), _mm512_add_epi32(c2, c3));
            _mm512_storeu_si512(ob + a * out_stride, sum);
        }
#elif RNNKIT_INT8_KIND == 1
        for (int a = 0; a < nact; a++) {
            const uint8_t* p = act + a * act_stride;
            // Lane pairs (2i, 2i+1) of c_j hold two partial sums of row 4j + i.
            __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0;
            for (long k = 0; k < kg; k++) {
                const __m256i av = _mm256_broadcastq_epi64(
                    _mm_cvtepu8_epi16(_mm_cvtsi32_si128(load4(p + 4 * k))));
                const int8_t* wk = wb + 64 * k;
                c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(av, _mm256_cvtepi8_epi16(
                                                                   _mm_loadu_si128((const __m128i*)wk))));
                c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(av, _mm256_cvtepi8_epi16(
                                                                   _mm_loadu_si128((const __m128i*)(wk + 16)))));
                c2 = _mm256_add_epi32(c2, _mm256_madd_epi16(av, _mm256_cvtepi8_epi16(
                                                                   _mm_loadu_si128((const __m128i*)(wk + 32)))));
                c3 = _mm256_add_epi32(c3, _mm256_madd_epi16(av, _mm256_cvtepi8_epi16(
                                                                   _mm_loadu_si128((const __m128i*)(wk + 48)))));
            }
            // hadd gives rows (0 1 4 5 | 2 3 6 7); the 64-bit permute restores 0..7.
            const __m256i lo = _mm256_permute4x64_epi64(_mm256_hadd_epi32(c0, c1), 0xD8);
            const __m256i hi = _mm256_permute4x64_epi64(_mm256_hadd_epi32(c2, c3), 0xD8);
            _mm256_storeu_si256((__m256i*)(ob + a * out_stride), lo);
            _mm256_storeu_si256((__m256i*)(ob + a * out_stride + 8), hi);
        }
#else
        for (int a = 0; a < nact; a++) {
            const uint8_t* p = act + a * act_stride;
            int32_t acc[kRows] = {0};
            for (long k = 0; k < kg; k++) {
                const int8_t* wk = wb + 64 * k;
                for (int r = 0; r < kRows; r++)
                    for (int i = 0; i < 4; i++) acc[r] += (int32_t)p[4 * k + i] * wk[4 * r + i];
            }
            memcpy(ob + a * out_stride, acc, sizeof(acc));
        }
#endif
    }
}

// Scale and zero point of one quantised activation row.
struct QRow {
    float scale;
    int32_t zero;
};

// lo = min(0, x[0, K)), hi = max(0, x[0, K)); NaN compares false and is skipped. Sixteen
// running extremes, then one reduction: the extremes do not depend on the order.
static void row_range(const float* x, int K, float* lo_out, float* hi_out) {
    const int k16 = K - K % 16;
    float lo = 0.0f, hi = 0.0f;
#if RNNKIT_INT8_KIND == 2
    // min_ps(a, b) is exactly a < b ? a : b (b when unordered), as the loop below spells it.
    __m512 lov = _mm512_setzero_ps(), hiv = lov;
    for (const float* xk = x; xk < x + k16; xk += 16) {
        const __m512 v = _mm512_loadu_ps(xk);
        lov = _mm512_min_ps(v, lov);
        hiv = _mm512_max_ps(v, hiv);
    }
    lo = _mm512_reduce_min_ps(lov);
    hi = _mm512_reduce_max_ps(hiv);
#else
    float los[16] = {0.0f}, his[16] = {0.0f};
    for (const float* xk = x; xk < x + k16; xk += 16)  // a pointer: see lstm_gates on -fwrapv
        for (int i = 0; i < 16; i++) {
            los[i] = xk[i] < los[i] ? xk[i] : los[i];
            his[i] = xk[i] > his[i] ? xk[i] : his[i];
        }
    for (int i = 0; i < 16; i++) {
        lo = los[i] < lo ? los[i] : lo;
        hi = his[i] > hi ? his[i] : hi;
    }
#endif
    for (int k = k16; k < K; k++) {
        lo = x[k] < lo ? x[k] : lo;
        hi = x[k] > hi ? x[k] : hi;
    }
    *lo_out = lo;
    *hi_out = hi;
}

// q[k] = clamp(round(clamp(x[k] * inv, -255, 255)) + zero, 0, 255), k in [0, K).
static void quantize_values(const float* x, int K, float inv, int32_t zero, uint8_t* q) {
    int k = 0;
#if RNNKIT_INT8_KIND == 2
    // The scalar loop's operations, sixteen lanes at once: min_ps(255, v) is 255 < v ? 255 : v
    // (v when NaN), the masked blend v >= -255 ? v : -255, and cvtps rounds to nearest even
    // as nearbyintf does in the default rounding mode.
    const __m512 top = _mm512_set1_ps(255.0f), bottom = _mm512_set1_ps(-255.0f);
    const __m512 scale = _mm512_set1_ps(inv);
    const __m512i z = _mm512_set1_epi32(zero), u0 = _mm512_setzero_si512(),
                  u255 = _mm512_set1_epi32(255);
    for (; k < K; k += 16) {
        const __mmask16 m = K - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (K - k)) - 1);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + k), scale);
        v = _mm512_min_ps(top, v);
        v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, bottom, _CMP_GE_OQ), bottom, v);
        __m512i u = _mm512_add_epi32(_mm512_cvtps_epi32(v), z);
        u = _mm512_min_epi32(_mm512_max_epi32(u, u0), u255);
        _mm512_mask_cvtepi32_storeu_epi8(q + k, m, u);
    }
#endif
    for (; k < K; k++) {
        float v = x[k] * inv;
        v = v > 255.0f ? 255.0f : v;
        v = v >= -255.0f ? v : -255.0f;  // also maps NaN, so the conversion is defined
        int32_t u = (int32_t)nearbyintf(v) + zero;
        q[k] = (uint8_t)(u < 0 ? 0 : u > 255 ? 255 : u);
    }
}

// q[0, Kp) = uint8 quantisation of x[0, K) (asymmetric, range widened to hold 0 exactly),
// zero padding. Every float operation is spelt out so tests can repeat it in NumPy.
static QRow quantize_row(const float* x, int K, int Kp, uint8_t* q) {
    float lo, hi;
    row_range(x, K, &lo, &hi);
    float scale = (hi - lo) / 255.0f;
    if (!(scale > 0.0f) || !isfinite(scale)) scale = 1.0f;  // all zero, or not finite
    const float inv = 1.0f / scale;
    float zf = nearbyintf(-lo * inv);
    zf = zf > 255.0f ? 255.0f : zf;
    const int32_t zero = isfinite(lo) ? (int32_t)zf : 0;
    quantize_values(x, K, inv, zero, q);
    for (int k = K; k < Kp; k++) q[k] = 0;
    return {scale, zero};
}

// tanh as a rational function (the minimax fit Eigen uses for float): a few ulp from tanhf,
// plain arithmetic the compiler vectorises, identical bits in every unit.
static inline float tanh_r(float x) {
    const float c = 7.90531110763549805f;
    const float ax = x < 0.0f ? -x : x;
    float v = x > c ? c : x;
    v = v < -c ? -c : v;
    const float v2 = v * v;
    float p = v2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = p * v2 + -8.60467152213735e-11f;
    p = p * v2 + 5.12229709037114e-08f;
    p = p * v2 + 1.48572235717979e-05f;
    p = p * v2 + 6.37261928875436e-04f;
    p = p * v2 + 4.89352455891786e-03f;
    p = p * v;
    float q = v2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = q * v2 + 2.26843463243900e-03f;
    q = q * v2 + 4.89352518554385e-03f;
    return ax < 0.0004f ? x : p / q;
}

static inline float sigmoid_r(float x) { return 0.5f * tanh_r(0.5f * x) + 0.5f; }

// out[j] = x[j] + dequantised acc[j] (just the latter without x), j in [0, n).
static void dequantize(const int32_t* __restrict acc, const int32_t* __restrict rowsum,
                       const float* __restrict scale, QRow q, const float* __restrict x,
                       float* __restrict out, int n) {
    if (x) {
        for (int j = 0; j < n; j++)
            out[j] = x[j] + (float)(acc[j] - q.zero * rowsum[j]) * (q.scale * scale[j]);
    } else {
        for (int j = 0; j < n; j++)
            out[j] = (float)(acc[j] - q.zero * rowsum[j]) * (q.scale * scale[j]);
    }
}

// out[j] = dequantised acc[j] + bias[j], j in [0, n): projection_share's arithmetic for one
// run of rows, restrict-qualified so the compiler vectorises it.
static void dequantize_bias(const int32_t* __restrict acc, const int32_t* __restrict rowsum,
                            const float* __restrict scale, QRow q, const float* __restrict bias,
                            float* __restrict out, int n) {
    for (int j = 0; j < n; j++) {
        const float v = (float)(acc[j] - q.zero * rowsum[j]) * (q.scale * scale[j]);
        out[j] = v + bias[j];
    }
}

// Gate arithmetic on n units whose pre-activations sit in consecutive runs of n (torch's gate
// order). Each gate's run gets its own pointer: Python's build flags include -fwrapv, under
// which an index such as 2 * n + j may wrap, and the compiler then computes (and extracts)
// every lane's index, which doubled the cost of these loops.
static inline void lstm_unit(const float* __restrict pi, const float* __restrict pf,
                             const float* __restrict pg, const float* __restrict po,
                             float* __restrict c, float* __restrict h, int j) {
    const float ig = sigmoid_r(pi[j]), fg = sigmoid_r(pf[j]);
    const float gg = tanh_r(pg[j]), og = sigmoid_r(po[j]);
    const float cv = fg * c[j] + ig * gg;
    c[j] = cv;
    h[j] = og * tanh_r(cv);
}

static inline void gru_unit(const float* __restrict pr, const float* __restrict pz,
                            const float* __restrict pn, const float* __restrict xn,
                            const float* __restrict bhn, const float* __restrict hprev,
                            float* __restrict h, int j) {
    const float rg = sigmoid_r(pr[j]), zg = sigmoid_r(pz[j]);
    const float ng = tanh_r(xn[j] + rg * (pn[j] + bhn[j]));
    h[j] = (1.0f - zg) * ng + zg * hprev[j];
}

#if RNNKIT_INT8_KIND == 2
// tanh_r and sigmoid_r on sixteen lanes, the same operations in the same order (no fused
// multiply-add): min_ps(c, x) is c < x ? c : x, i.e. x > c ? c : x, also for NaN; max_ps
// likewise. Written out because the compiler's vectorisation of the scalar loops left each
// vector's two serial rational functions (a division and chains of seven multiply-adds)
// latency-bound; here the loops below keep two vectors of units in flight.
static inline __m512 tanh16(__m512 x) {
    const __m512 c = _mm512_set1_ps(7.90531110763549805f);
    const __m512 ax = _mm512_abs_ps(x);  // only compared with 0.0004: as x < 0 ? -x : x
    __m512 v = _mm512_min_ps(c, x);
    v = _mm512_max_ps(_mm512_set1_ps(-7.90531110763549805f), v);
    const __m512 v2 = _mm512_mul_ps(v, v);
    auto step = [&](__m512 acc, float k) {
        return _mm512_add_ps(_mm512_mul_ps(acc, v2), _mm512_set1_ps(k));
    };
    __m512 p = _mm512_add_ps(_mm512_mul_ps(v2, _mm512_set1_ps(-2.76076847742355e-16f)),
                             _mm512_set1_ps(2.00018790482477e-13f));
    p = step(p, -8.60467152213735e-11f);
    p = step(p, 5.12229709037114e-08f);
    p = step(p, 1.48572235717979e-05f);
    p = step(p, 6.37261928875436e-04f);
    p = step(p, 4.89352455891786e-03f);
    p = _mm512_mul_ps(p, v);
    __m512 q = _mm512_add_ps(_mm512_mul_ps(v2, _mm512_set1_ps(1.19825839466702e-06f)),
                             _mm512_set1_ps(1.18534705686654e-04f));
    q = step(q, 2.26843463243900e-03f);
    q = step(q, 4.89352518554385e-03f);
    const __mmask16 small = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.0004f), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(small, _mm512_div_ps(p, q), x);
}

static inline __m512 sigmoid16(__m512 x) {
    const __m512 half = _mm512_set1_ps(0.5f);
    return _mm512_add_ps(_mm512_mul_ps(half, tanh16(_mm512_mul_ps(half, x))), half);
}

static inline __mmask16 lanes(int n, int j) {
    return n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
}

static void lstm_gates(const float* __restrict pre, int n, float* __restrict c,
                       float* __restrict h) {
    const float *pi = pre, *pf = pre + n, *pg = pf + n, *po = pg + n;
    for (int j = 0; j < n; j += 16) {
        const __mmask16 m = lanes(n, j);
        const __m512 ig = sigmoid16(_mm512_maskz_loadu_ps(m, pi + j));
        const __m512 fg = sigmoid16(_mm512_maskz_loadu_ps(m, pf + j));
        const __m512 gg = tanh16(_mm512_maskz_loadu_ps(m, pg + j));
        const __m512 og = sigmoid16(_mm512_maskz_loadu_ps(m, po + j));
        const __m512 cv = _mm512_add_ps(_mm512_mul_ps(fg, _mm512_maskz_loadu_ps(m, c + j)),
                                        _mm512_mul_ps(ig, gg));
        _mm512_mask_storeu_ps(c + j, m, cv);
        _mm512_mask_storeu_ps(h + j, m, _mm512_mul_ps(og, tanh16(cv)));
    }
}

static void gru_gates(const float* __restrict pre, const float* __restrict xn,
                      const float* __restrict bhn, const float* __restrict hprev, int n,
                      float* __restrict h) {
    const float *pr = pre, *pz = pre + n, *pn = pz + n;
    for (int j = 0; j < n; j += 16) {
        const __mmask16 m = lanes(n, j);
        const __m512 rg = sigmoid16(_mm512_maskz_loadu_ps(m, pr + j));
        const __m512 zg = sigmoid16(_mm512_maskz_loadu_ps(m, pz + j));
        const __m512 inner = _mm512_add_ps(_mm512_maskz_loadu_ps(m, pn + j),
                                           _mm512_maskz_loadu_ps(m, bhn + j));
        const __m512 ng = tanh16(_mm512_add_ps(_mm512_maskz_loadu_ps(m, xn + j),
                                               _mm512_mul_ps(rg, inner)));
        const __m512 keep = _mm512_mul_ps(zg, _mm512_maskz_loadu_ps(m, hprev + j));
        const __m512 out = _mm512_add_ps(
            _mm512_mul_ps(_mm512_sub_ps(_mm512_set1_ps(1.0f), zg), ng), keep);
        _mm512_mask_storeu_ps(h + j, m, out);
    }
}

static void rnn_gates(const float* __restrict pre, bool relu, int n, float* __restrict h) {
    for (int j = 0; j < n; j += 16) {
        const __mmask16 m = lanes(n, j);
        const __m512 v = _mm512_maskz_loadu_ps(m, pre + j);
        // pre < 0 ? 0 : pre: max_ps(0, v) is 0 > v ? 0 : v (v when NaN)
        _mm512_mask_storeu_ps(h + j, m, relu ? _mm512_max_ps(_mm512_setzero_ps(), v) : tanh16(v));
    }
}
#else
static void lstm_gates(const float* __restrict pre, int n, float* __restrict c,
                       float* __restrict h) {
    const float *pi = pre, *pf = pre + n, *pg = pf + n, *po = pg + n;
    for (int j = 0; j < n; j++) lstm_unit(pi, pf, pg, po, c, h, j);
}

static void gru_gates(const float* __restrict pre, const float* __restrict xn,
                      const float* __restrict bhn, const float* __restrict hprev, int n,
                      float* __restrict h) {
    const float *pr = pre, *pz = pre + n, *pn = pz + n;
    for (int j = 0; j < n; j++) gru_unit(pr, pz, pn, xn, bhn, hprev, h, j);
}

static void rnn_gates(const float* __restrict pre, bool relu, int n, float* __restrict h) {
    if (relu) {
        for (int j = 0; j < n; j++) h[j] = pre[j] < 0.0f ? 0.0f : pre[j];
    } else {
        for (int j = 0; j < n; j++) h[j] = tanh_r(pre[j]);
    }
}
#endif

static int gate_count(int mode) { return mode == MODE_LSTM ? 4 : mode == MODE_GRU ? 3 : 1; }

static void split(int n, int tid, int nt, int* begin, int* end) {
    *begin = (int)((long)n * tid / nt);
    *end = (int)((long)n * (tid + 1) / nt);
}

// ------------------------------------------------------------------ projection of many rows
// y (M, R) = deq(W q(x)) + bias with W's rows in G gate segments of Rp/G padded rows, R/G
// real ones each; y's column g*(R/G) + j comes from packed row g*(Rp/G) + j.
struct Projection {
    const Int8Matrix* m;
    int M, G;
    const float* x;
    const float* bias;
    float* y;
    uint8_t* q;       // (M, Kp) quantised rows
    QRow* rows;       // (M)
    int32_t* acc;     // threads x (kChunk, Rp)
};

static void projection_share(void* ctx, int tid, int nt) {
    const Projection& p = *(const Projection*)ctx;
    const Int8Matrix& m = *p.m;
    int r0, r1;
    split(p.M, tid, nt, &r0, &r1);
    for (int r = r0; r < r1; r++)
        p.rows[r] = quantize_row(p.x + (long)r * m.K, m.K, m.Kp, p.q + (long)r * m.Kp);
    parallel_barrier();
    const int Rg = m.R / p.G, Rpg = m.Rp / p.G, nb = Rpg / kRows, kg = m.Kp / 4;
    int u0, u1;
    split(nb, tid, nt, &u0, &u1);
    if (u0 == u1) return;
    int32_t* acc = p.acc + (long)tid * kChunk * m.Rp;
    const int j1 = u1 * kRows < Rg ? u1 * kRows : Rg;
    for (int a0 = 0; a0 < p.M; a0 += kChunk) {
        const int n = p.M - a0 < kChunk ? p.M - a0 : kChunk;
        for (int g = 0; g < p.G; g++)
            dot_blocks(m.w, kg, g * nb + u0, g * nb + u1, p.q + (long)a0 * m.Kp, m.Kp, n, acc,
                       m.Rp);
        for (int a = 0; a < n; a++) {
            const QRow qr = p.rows[a0 + a];
            const int32_t* ar = acc + (long)a * m.Rp;
            float* yr = p.y + (long)(a0 + a) * m.R;
            for (int g = 0; g < p.G; g++) {
                for (int j = u0 * kRows; j < j1; j++) {
                    const int row = g * Rpg + j;
                    const float v = (float)(ar[row] - qr.zero * m.rowsum[row]) *
                                    (qr.scale * m.scale[row]);
                    yr[g * Rg + j] = p.bias ? v + p.bias[g * Rg + j] : v;
                }
            }
        }
    }
}

static void project(const Int8Matrix& m, int M, int G, const float* x, const float* bias,
                    float* y, int threads) {
    Int8Buffer q((size_t)M * m.Kp), rows(sizeof(QRow) * M),
        acc(sizeof(int32_t) * threads * kChunk * m.Rp);
    Projection p = {&m, M, G, x, bias, y, (uint8_t*)q.data, (QRow*)rows.data,
                    (int32_t*)acc.data};
    parallel_run(threads, &projection_share, &p);
}

static void linear(const Int8LinearArgs& a) {
    project(a.w, a.M, 1, a.x, a.bias, a.y, a.threads);
}

// ------------------------------------------------------------------ recurrence
struct Recurrence {
    const Int8LayerArgs* a;
    const float* xg;   // (T, B, G*H) input projection with biases
    float* h[2];       // (B, Hout) state: read one, write the other each step
    float* c;          // (B, H)
    float* m;          // (B, H) LSTM-with-projection o * tanh(c)
    int32_t* acc;      // (B, G*Hp) shared; each thread owns its columns
    int32_t* racc;     // (B, Houtp)
    uint8_t* q;        // threads x (B, Kp of hh) private quantised state
    uint8_t* qm;       // threads x (B, Kp of hr)
    QRow* rows;        // threads x 2B
    float* pre;        // threads x (G*Hp) gate pre-activations of one row
};

static inline bool active(const int64_t* lengths, int b, int t) {
    return lengths == nullptr || t < lengths[b];
}

static void recurrence_share(void* ctx, int tid, int nt) {
    const Recurrence& r = *(const Recurrence*)ctx;
    const Int8LayerArgs& a = *r.a;
    const int G = gate_count(a.mode), H = a.H, B = a.B, Hout = a.Hout;
    const int Hp = a.hh.Rp / G, GH = G * H, GHp = G * Hp, nb = Hp / kRows;
    const bool proj = a.hr.w != nullptr;
    int u0, u1, v0 = 0, v1 = 0;
    split(nb, tid, nt, &u0, &u1);
    const int j0 = u0 * kRows, j1 = u1 * kRows < H ? u1 * kRows : H;
    if (proj) split(a.hr.Rp / kRows, tid, nt, &v0, &v1);
    const int i0 = v0 * kRows, i1 = v1 * kRows < Hout ? v1 * kRows : Hout;
    uint8_t* q = r.q + (long)tid * B * a.hh.Kp;
    uint8_t* qm = proj ? r.qm + (long)tid * B * a.hr.Kp : nullptr;
    QRow* rows = r.rows + (long)tid * 2 * B;
    QRow* mrows = rows + B;
    float* pre = r.pre + (long)tid * G * Hp;
    for (int s = 0; s < a.T; s++) {
        const int t = a.reverse ? a.T - 1 - s : s;
        const float* cur = r.h[s & 1];
        float* next = r.h[(s + 1) & 1];
        float* yt = a.y + (long)t * B * Hout;
        const float* xt = r.xg + (long)t * B * GH;
        for (int b = 0; b < B; b++)
            rows[b] = quantize_row(cur + (long)b * Hout, Hout, a.hh.Kp, q + (long)b * a.hh.Kp);
        if (u0 < u1)
            for (int g = 0; g < G; g++)
                dot_blocks(a.hh.w, a.hh.Kp / 4, g * nb + u0, g * nb + u1, q, a.hh.Kp, B, r.acc, GHp);
        const int n = j1 - j0;
        for (int b = 0; b < B && n > 0; b++) {
            const int32_t* ab = r.acc + (long)b * GHp + j0;
            const float* xb = xt + (long)b * GH + j0;
            const float* hb = cur + (long)b * Hout + j0;
            float* out = (proj ? r.m + (long)b * H : next + (long)b * Hout) + j0;
            float* yb = yt + (long)b * Hout + j0;
            if (!active(a.lengths, b, t)) {
                if (!proj) {
                    memcpy(out, hb, sizeof(float) * n);
                    memset(yb, 0, sizeof(float) * n);
                }
                continue;
            }
            // The n gate of a GRU takes W_hn h apart from its input part (reset gate between).
            for (int g = 0; g < G; g++)
                dequantize(ab + g * Hp, a.hh.rowsum + g * Hp + j0, a.hh.scale + g * Hp + j0,
                           rows[b], (a.mode == MODE_GRU && g == 2) ? nullptr : xb + g * H,
                           pre + g * n, n);
            if (a.mode == MODE_LSTM)
                lstm_gates(pre, n, r.c + (long)b * H + j0, out);
            else if (a.mode == MODE_GRU)
                gru_gates(pre, xb + 2 * H, a.bhn + j0, hb, n, out);
            else
                rnn_gates(pre, a.mode == MODE_RNN_RELU, n, out);
            if (!proj) memcpy(yb, out, sizeof(float) * n);
        }
        if (proj) {
            parallel_barrier();  // every unit of m is written
            for (int b = 0; b < B; b++)
                mrows[b] = quantize_row(r.m + (long)b * H, H, a.hr.Kp, qm + (long)b * a.hr.Kp);
            if (v0 < v1)
                dot_blocks(a.hr.w, a.hr.Kp / 4, v0, v1, qm, a.hr.Kp, B, r.racc, a.hr.Rp);
            for (int b = 0; b < B; b++) {
                float* yb = yt + (long)b * Hout;
                float* hb = next + (long)b * Hout;
                if (!active(a.lengths, b, t)) {
                    for (int i = i0; i < i1; i++) {
                        hb[i] = cur[(long)b * Hout + i];
                        yb[i] = 0.0f;
                    }
                    continue;
                }
                const int32_t* ab = r.racc + (long)b * a.hr.Rp;
                const float sa = mrows[b].scale;
                const int32_t z = mrows[b].zero;
                for (int i = i0; i < i1; i++) {
                    const float v = (float)(ab[i] - z * a.hr.rowsum[i]) * (sa * a.hr.scale[i]);
                    hb[i] = v;
                    yb[i] = v;
                }
            }
        }
        parallel_barrier();  // the new state is complete before anyone quantises it
    }
}

static void layer(const Int8LayerArgs& a) {
    const int G = gate_count(a.mode), B = a.B, T = a.T;
    const int Hp = a.hh.Rp / G;
    const size_t f = sizeof(float);
    Int8Buffer xg(f * T * B * G * a.H);
    project(a.ih, T * B, G, a.x, a.bias, (float*)xg.data, a.threads);
    Int8Buffer h(f * 2 * B * a.Hout), c(f * B * a.H), m(f * B * a.H);
    memcpy(h.data, a.h0, f * B * a.Hout);
    if (a.c0) memcpy(c.data, a.c0, f * B * a.H);
    Int8Buffer acc(sizeof(int32_t) * B * G * Hp),
        racc(sizeof(int32_t) * B * (a.hr.w ? a.hr.Rp : 0)),
        q((size_t)a.threads * B * a.hh.Kp), qm((size_t)a.threads * B * (a.hr.w ? a.hr.Kp : 0)),
        rows(sizeof(QRow) * a.threads * 2 * B), pre(f * a.threads * G * Hp);
    float* hp = (float*)h.data;
    Recurrence r = {&a, (const float*)xg.data, {hp, hp + (size_t)B * a.Hout}, (float*)c.data,
                    (float*)m.data, (int32_t*)acc.data, (int32_t*)racc.data, (uint8_t*)q.data,
                    (uint8_t*)qm.data, (QRow*)rows.data, (float*)pre.data};
    parallel_run(a.threads, &recurrence_share, &r);
    memcpy(a.hn, r.h[T & 1], f * B * a.Hout);
    if (a.cn) memcpy(a.cn, c.data, f * B * a.H);
}

// ------------------------------------------------------------------ streaming step
// Every layer of one time step in one parallel run. Each thread owns a slice of 16-unit blocks
// (all gates of its units) and quantises the layer input and state rows privately, so a
// layer needs one barrier (two with a projection). The float operations are those of
// projection_share and recurrence_share in the same order, so a step equals layer()'s.
struct StreamShared {
    // Copies of the arguments and of layer 0, not pointers to them: a second thread reads
    // them from this struct's few lines, fetched together, instead of chasing pointers
    // (ctx, then the arguments, then the layer array) through one cross-core miss after
    // another at the start of every step.
    Int8StreamArgs a;
    Int8StreamLayer first;
    int32_t* acc;   // (B, G*Hp) recurrent products, each thread owning its columns
    int32_t* xacc;  // (B, G*Hp) input products, likewise
    int32_t* racc;  // (B, Houtp) projection products
    float* m;       // (B, H) LSTM-with-projection o * tanh(c)
    char* priv;     // threads x priv_bytes
    long priv_bytes;
};

static void stream_share(void* ctx, int tid, int nt) {
    const StreamShared& sh = *(const StreamShared*)ctx;
    const Int8StreamArgs& a = sh.a;
    const int G = gate_count(a.mode), H = a.H, B = a.B, Hout = a.Hout;
    char* mine = sh.priv + (long)tid * sh.priv_bytes;
    QRow* rows = (QRow*)mine;              // 3B: input, state, projection rows
    float* pre = (float*)(rows + 3 * B);   // G * Hp
    float* xg = pre + G * (long)sh.first.hh.Rp / G;  // G * Hp, laid out as pre
    uint8_t* q = (uint8_t*)(xg + G * (long)sh.first.hh.Rp / G);  // 2 x B x max Kp
    const float* x = a.x;
    for (int l = 0; l < a.layers; l++) {
        const Int8StreamLayer& L = l == 0 ? sh.first : a.layer[l];
        const int Hp = L.hh.Rp / G, GHp = G * Hp, nb = Hp / kRows;
        const bool proj = L.hr.w != nullptr;
        int u0, u1;
        split(nb, tid, nt, &u0, &u1);
        const int j0 = u0 * kRows, j1 = u1 * kRows < H ? u1 * kRows : H, n = j1 - j0;
        const float* cur = a.h + (long)l * B * Hout;
        float* next = a.hn + (long)l * B * Hout;
        if (n > 0) {
            uint8_t *qx = q, *qh = q + (long)B * L.ih.Kp;
            for (int b = 0; b < B; b++) {
                rows[b] = quantize_row(x + (long)b * L.ih.K, L.ih.K, L.ih.Kp,
                                       qx + (long)b * L.ih.Kp);
                rows[B + b] = quantize_row(cur + (long)b * Hout, Hout, L.hh.Kp,
                                           qh + (long)b * L.hh.Kp);
            }
            // Every other step walks the gate segments of both matrices backwards, so a step
            // starts on the weights the previous one read last, still in L1: GRU H=128's 96
            // KB of products took 630 ns instead of 753 (bench/int8_micro.cpp). The integer
            // sums, and so the results, do not depend on the order.
            static thread_local bool backwards = false;
            backwards = !backwards;
            for (int i = 0; i < 2 * G; i++) {
                const int seg = backwards ? 2 * G - 1 - i : i, g = seg % G;
                const bool rec = seg >= G;
                const Int8Matrix& w = rec ? L.hh : L.ih;
                dot_blocks(w.w, w.Kp / 4, g * nb + u0, g * nb + u1, rec ? qh : qx, w.Kp, B,
                           rec ? sh.acc : sh.xacc, GHp);
            }
        }
        for (int b = 0; b < B && n > 0; b++) {
            const QRow qx = rows[b];
            const int32_t* xb = sh.xacc + (long)b * GHp;
            for (int g = 0; g < G; g++)
                dequantize_bias(xb + g * Hp + j0, L.ih.rowsum + g * Hp + j0,
                                L.ih.scale + g * Hp + j0, qx, L.bias + g * H + j0, xg + g * n, n);
            const int32_t* ab = sh.acc + (long)b * GHp + j0;
            const float* hb = cur + (long)b * Hout + j0;
            float* out = (proj ? sh.m + (long)b * H : next + (long)b * Hout) + j0;
            for (int g = 0; g < G; g++)
                dequantize(ab + g * Hp, L.hh.rowsum + g * Hp + j0, L.hh.scale + g * Hp + j0,
                           rows[B + b], (a.mode == MODE_GRU && g == 2) ? nullptr : xg + g * n,
                           pre + g * n, n);
            if (a.mode == MODE_LSTM) {
                float* c = a.cn + (long)l * B * H + (long)b * H + j0;
                memcpy(c, a.c + (long)l * B * H + (long)b * H + j0, sizeof(float) * n);
                lstm_gates(pre, n, c, out);
            } else if (a.mode == MODE_GRU) {
                gru_gates(pre, xg + 2 * n, L.bhn + j0, hb, n, out);
            } else {
                rnn_gates(pre, a.mode == MODE_RNN_RELU, n, out);
            }
        }
        if (proj) {
            parallel_barrier();  // every unit of m is written
            int v0, v1;
            split(L.hr.Rp / kRows, tid, nt, &v0, &v1);
            const int i0 = v0 * kRows, i1 = v1 * kRows < Hout ? v1 * kRows : Hout;
            if (v0 < v1) {
                for (int b = 0; b < B; b++)
                    rows[2 * B + b] = quantize_row(sh.m + (long)b * H, H, L.hr.Kp,
                                                   q + (long)b * L.hr.Kp);
                dot_blocks(L.hr.w, L.hr.Kp / 4, v0, v1, q, L.hr.Kp, B, sh.racc, L.hr.Rp);
                for (int b = 0; b < B; b++) {
                    const int32_t* ab = sh.racc + (long)b * L.hr.Rp;
                    const QRow mr = rows[2 * B + b];
                    for (int i = i0; i < i1; i++)
                        next[(long)b * Hout + i] =
                            (float)(ab[i] - mr.zero * L.hr.rowsum[i]) * (mr.scale * L.hr.scale[i]);
                }
            }
        }
        // The next layer reads all of this layer's new state. After the last layer the end of
        // the parallel run (which waits for every thread) is that barrier already.
        if (nt > 1 && l + 1 < a.layers) parallel_barrier();
        x = next;
    }
}

static void stream(const Int8StreamArgs& a) {
    const int G = gate_count(a.mode), B = a.B;
    long Hp = 0, Houtp = 0, Kp = 0;
    for (int l = 0; l < a.layers; l++) {
        const Int8StreamLayer& L = a.layer[l];
        Hp = L.hh.Rp / G > Hp ? L.hh.Rp / G : Hp;
        Houtp = L.hr.w && L.hr.Rp > Houtp ? L.hr.Rp : Houtp;
        const long k = L.ih.Kp > L.hh.Kp ? L.ih.Kp : L.hh.Kp;
        Kp = k > Kp ? k : Kp;
        Kp = L.hr.w && L.hr.Kp > Kp ? L.hr.Kp : Kp;
    }
    // Every layer has the same Hp (one hidden size), which stream_share relies on.
    const long acc = 4L * B * G * Hp, racc = 4L * B * Houtp, m = 4L * B * a.H;
    const long priv = (long)sizeof(QRow) * 3 * B + 4L * 2 * G * Hp + 2L * B * Kp;
    const long priv_bytes = (priv + 63) / 64 * 64;
    char* work = (char*)thread_scratch((size_t)(2 * acc + racc + m + 64 * 4 +
                                                a.threads * priv_bytes));
    auto align = [](char* p) { return (char*)(((uintptr_t)p + 63) & ~(uintptr_t)63); };
    StreamShared sh;
    sh.a = a;
    sh.first = a.layer[0];
    sh.acc = (int32_t*)work;
    sh.xacc = (int32_t*)align(work + acc);
    sh.racc = (int32_t*)align((char*)sh.xacc + acc);
    sh.m = (float*)align((char*)sh.racc + racc);
    sh.priv = align((char*)sh.m + m);
    sh.priv_bytes = priv_bytes;
    parallel_run(a.threads, &stream_share, &sh);
}

static const Int8Table table = {RNNKIT_INT8_NAME, &layer, &linear, &stream};
