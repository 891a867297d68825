// Recurrent kernels, written once with GCC/Clang vector extensions and included by
// each ISA translation unit inside its own namespace with RNNKIT_VBYTES (vector width
// in bytes), RNNKIT_MR and RNNKIT_NV (micro-tile rows / vectors) defined. Nothing here
// may include headers: the including file does that before switching the target ISA.
//
// Layout: every matrix is row-major and contiguous. The per-step product is
// C (B x N) = A (B x K) * W (K x N), computed by a register-tiled micro-kernel that
// broadcasts A and streams W, which stays in L2 across the time loop.

// Bytes of a K-chunk of panels reused by every row tile (see panels_full); an ISA unit may
// set its own.
#ifndef RNNKIT_L1_PANEL_BYTES
#define RNNKIT_L1_PANEL_BYTES (24 * 1024)
#endif

typedef float vf __attribute__((vector_size(RNNKIT_VBYTES)));
typedef double vd __attribute__((vector_size(RNNKIT_VBYTES)));
typedef int32_t vi __attribute__((vector_size(RNNKIT_VBYTES)));

template <typename T> struct VecOf;
template <> struct VecOf<float> { typedef vf type; };
template <> struct VecOf<double> { typedef vd type; };

template <typename V, typename T>
static inline V load_vec(const T* p) {
    V v;
    __builtin_memcpy(&v, p, sizeof(V));
    return v;
}
template <typename V, typename T>
static inline void store_vec(T* p, V v) {
    __builtin_memcpy(p, &v, sizeof(V));
}

// ---------------------------------------------------------------- micro-kernel
// Weights of every per-step product are first packed into column panels: a K x N matrix
// becomes ceil(N / lanes) panels, each K x lanes, contiguous and zero-padded. A panel is
// one unbroken stream (no cache-set conflicts between rows, no page crossings in the middle
// of a row), each thread packs and then reads only its own panels (so they stay in its L2),
// and widths that are not a multiple of the vector need no scalar tails.

template <typename T>
static constexpr int lanes() {
    return (int)(sizeof(typename VecOf<T>::type) / sizeof(T));
}

// C[m, j*L + l] = Cinit[m, ...] (or 0) + sum_k A[m, k] * P[j*ps + k*L + l] for m < MR_, j < NV_.
// With pf != 0, also asks for Cinit[pf + ...] (the same tile of the next time step's input
// projections, which are read from memory) to be brought into L2 while this tile computes.
// ColA: A is stored k-major (A[m, k] at A[k * lda + m]), as a transposed view is.
template <typename T, int MR_, int NV_, bool ColA = false>
static inline void tile(int K, const T* A, long lda, const T* P, long ps, T* C, long ldc,
                        const T* Cinit, long ldi, long pf) {
    typedef typename VecOf<T>::type V;
    constexpr int L = lanes<T>();
    V acc[MR_][NV_];
    for (int m = 0; m < MR_; m++)
        for (int j = 0; j < NV_; j++)
            acc[m][j] = Cinit ? load_vec<V>(Cinit + m * ldi + j * L) : V{};
    if (pf)
        for (int m = 0; m < MR_; m++)
            for (int j = 0; j < NV_; j++) __builtin_prefetch(Cinit + pf + m * ldi + j * L, 0, 2);
    for (int k = 0; k < K; k++) {
        V w[NV_];
        for (int j = 0; j < NV_; j++) w[j] = load_vec<V>(P + j * ps + k * L);
        for (int m = 0; m < MR_; m++) {
            const T a = ColA ? A[(long)k * lda + m] : A[m * lda + k];
            for (int j = 0; j < NV_; j++) acc[m][j] += a * w[j];
        }
    }
    for (int m = 0; m < MR_; m++)
        for (int j = 0; j < NV_; j++) store_vec(C + m * ldc + j * L, acc[m][j]);
}

// One row (batch 1): each column's K products go to KS accumulators in turn (k mod KS), so
// even a single panel keeps KS independent FMA chains in flight (a thread's share of one gate
// can be one or two panels); they are summed in a fixed order, then Cinit is added.
template <typename T, int NV_>
static inline void tile_row(int K, const T* A, const T* P, long ps, T* C, const T* Cinit,
                            long pf) {
    typedef typename VecOf<T>::type V;
    constexpr int L = lanes<T>(), KS = 4;
    V acc[KS][NV_];
    for (int s = 0; s < KS; s++)
        for (int j = 0; j < NV_; j++) acc[s][j] = V{};
    if (pf)
        for (int j = 0; j < NV_; j++) __builtin_prefetch(Cinit + pf + j * L, 0, 2);
    int k = 0;
    for (; k + KS <= K; k += KS)
        for (int s = 0; s < KS; s++) {
            const T a = A[k + s];
            for (int j = 0; j < NV_; j++) acc[s][j] += a * load_vec<V>(P + j * ps + (k + s) * L);
        }
    for (; k < K; k++)
        for (int j = 0; j < NV_; j++) acc[0][j] += A[k] * load_vec<V>(P + j * ps + k * L);
    for (int j = 0; j < NV_; j++) {
        V sum = (acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j]);
        store_vec(C + j * L, Cinit ? load_vec<V>(Cinit + j * L) + sum : sum);
    }
}

// Rows in tiles of at most MR. `balance`: all of (nearly) one height, 16 rows as 8 + 8, not
// 12 + 4, whose 4-row tile has too few accumulators to hide the FMA latency and loads its
// panel vectors for a third of the work (3-10% per forward step at 16-32 rows, H <= 256).
// Callers balance only when K is not cut into chunks: with panels beyond L2 (H = 512) the
// first tile of each chunk waits on their loads, and a taller one hides them better.
// A row's sum does not depend on its tile (every element is init + the same K
// multiply-adds in order), so neither do the bits.
template <typename T, int NV_, bool ColA = false>
static inline void tile_rows(int rows, int K, const T* A, long lda, const T* P, long ps, T* C,
                             long ldc, const T* Cinit, long ldi, long pf, bool balance) {
    const int tiles = (rows + RNNKIT_MR - 1) / RNNKIT_MR;
    for (int i = 0, m = 0; i < tiles; i++) {
        const int r = balance ? (int)((long)rows * (i + 1) / tiles) - m
                              : (rows - m < RNNKIT_MR ? rows - m : RNNKIT_MR);
        const T* ci = Cinit ? Cinit + m * ldi : nullptr;
        // One template instance per height so accumulators stay in registers.
        switch (r) {
#define RNNKIT_ROWS(n) \
    case n: tile<T, (n <= RNNKIT_MR ? n : 1), NV_, ColA>(K, ColA ? A + m : A + m * lda, lda, P, ps, C + m * ldc, ldc, ci, ldi, pf); break;
            RNNKIT_ROWS(1) RNNKIT_ROWS(2) RNNKIT_ROWS(3) RNNKIT_ROWS(4) RNNKIT_ROWS(5)
            RNNKIT_ROWS(6) RNNKIT_ROWS(7) RNNKIT_ROWS(8) RNNKIT_ROWS(9) RNNKIT_ROWS(10)
            RNNKIT_ROWS(11) RNNKIT_ROWS(12)
#undef RNNKIT_ROWS
            default: break;
        }
        m += r;
    }
}

// NV_ adjacent full panels for all M rows. With several row tiles K is cut into chunks whose
// panel slice fits in L1, so every row tile reuses it from there; with one tile (small
// batch) each weight is read once and accumulators stay in registers over the whole K.
template <typename T, int NV_, bool ColA = false>
static inline void panels_full(int M, int K, const T* A, long lda, const T* P, long ps, T* C,
                               long ldc, const T* Cinit, long ldi, long pf) {
    constexpr int chunk = (RNNKIT_L1_PANEL_BYTES / (NV_ * lanes<T>() * (int)sizeof(T))) & ~7;
    if (M <= RNNKIT_MR) {
        tile_rows<T, NV_, ColA>(M, K, A, lda, P, ps, C, ldc, Cinit, ldi, pf, false);
        return;
    }
    for (int k0 = 0; k0 < K; k0 += chunk) {
        int kc = K - k0 < chunk ? K - k0 : chunk;
        const T* init = k0 == 0 ? Cinit : C;
        tile_rows<T, NV_, ColA>(M, kc, ColA ? A + (long)k0 * lda : A + k0, lda,
                                P + (long)k0 * lanes<T>(), ps, C, ldc, init,
                                k0 == 0 ? ldi : ldc, k0 == 0 ? pf : 0, K <= chunk);
    }
}

// gemm_packed for one row: panels [j0, j1) of C (1 x N) = Cinit + A (1 x K) * W. Every column
// is computed the same way whatever the order or grouping of panels, so `descending` (last
// panel first) changes no bit: the batch-1 time loop alternates the direction every step, so
// a step starts on the panels the previous one read last, still in L1 when a thread's
// panels are somewhat larger than L1 (LSTM H = 64 on one thread: 64 KB against 48 KB).
template <typename T>
static void gemv_packed(int K, const T* A, const T* P, int N, int j0, int j1, T* C,
                        const T* Cinit, long pf, bool descending) {
    constexpr int L = lanes<T>();
    const long ps = (long)K * L;
    const int full = N / L < j1 ? N / L : j1;
    auto part = [&](int j) {  // the last panel of a width that is not a multiple of L
        if (j < j1 && j * L < N) {
            const int rem = N - j * L;
            T row[L];
            for (int l = 0; l < L; l++) row[l] = l < rem && Cinit ? Cinit[j * L + l] : T(0);
            tile_row<T, 1>(K, A, P + j * ps, ps, row, row, 0);
            for (int l = 0; l < rem; l++) C[j * L + l] = row[l];
        }
    };
#define RNNKIT_ROW(nv, j) \
    tile_row<T, nv>(K, A, P + (j) * ps, ps, C + (j) * L, Cinit ? Cinit + (j) * L : nullptr, pf)
    // A thread's share of a gate is often two panels (H = 64 on two threads, AVX-512): one
    // pass over both keeps 8 FMA chains in flight instead of 4 twice.
    if (descending) {
        part(full > j0 ? full : j0);
        int j = full;
        for (; j - 4 >= j0; j -= 4) RNNKIT_ROW(4, j - 4);
        for (; j - 2 >= j0; j -= 2) RNNKIT_ROW(2, j - 2);
        for (; j - 1 >= j0; j--) RNNKIT_ROW(1, j - 1);
        return;
    }
    int j = j0;
    for (; j + 4 <= full; j += 4) RNNKIT_ROW(4, j);
    for (; j + 2 <= full; j += 2) RNNKIT_ROW(2, j);
    for (; j < full; j++) RNNKIT_ROW(1, j);
    part(j);
#undef RNNKIT_ROW
}

// gemm_packed's panel j when it is the last, narrower one (N not a multiple of L): through a
// row-by-row scratch tile so nothing past column N is written. Nothing when j is past it.
template <typename T, bool ColA>
static void partial_panel(int M, int K, const T* A, long lda, const T* P, int N, int j, int j1,
                          T* C, long ldc, const T* Cinit, long ldi) {
    constexpr int L = lanes<T>();
    if (j >= j1 || j * L >= N) return;
    const long ps = (long)K * L;
    const int rem = N - j * L;
    for (int m = 0; m < M; m++) {
        T row[L];
        for (int l = 0; l < L; l++) row[l] = l < rem && Cinit ? Cinit[m * ldi + j * L + l] : T(0);
        tile<T, 1, 1, ColA>(K, ColA ? A + m : A + m * lda, lda, P + j * ps, ps, row, L, row, L,
                            0);
        for (int l = 0; l < rem; l++) C[m * ldc + j * L + l] = row[l];
    }
}

// Columns [j0*L, min(j1*L, N)) of C (M x N) = Cinit + A (M x K) * W, W packed by
// pack_panels. The last panel of a width that is not a multiple of L goes through a
// row-by-row scratch tile so nothing past column N is written. One row takes gemv_packed
// (another summation order) unless `tiles`: a thread's one-row share of a larger batch must
// get the bits the batch's product gives that row. `descending`: the panels are taken last
// first (as gemv_packed's; a column's bits do not depend on the order or grouping).
template <typename T, bool ColA = false>
static void gemm_packed(int M, int K, const T* A, long lda, const T* P, int N, int j0, int j1,
                        T* C, long ldc, const T* Cinit, long ldi, long pf = 0,
                        bool tiles = false, bool descending = false) {
    constexpr int L = lanes<T>();
    const long ps = (long)K * L;
    const int full = N / L < j1 ? N / L : j1;
    int j = j0;
    if (M == 1 && !tiles && !ColA) {
        gemv_packed<T>(K, A, P, N, j0, j1, C, Cinit, pf, descending);
        return;
    }
    if (descending) {
        partial_panel<T, ColA>(M, K, A, lda, P, N, full > j0 ? full : j0, j1, C, ldc, Cinit,
                               ldi);
#define RNNKIT_PANELS_DOWN(nv)                                                               \
    for (j = full; j - (nv) >= j0; j -= (nv))                                                \
        panels_full<T, (nv), ColA>(M, K, A, lda, P + (j - (nv)) * ps, ps, C + (j - (nv)) * L, \
                                   ldc, Cinit ? Cinit + (j - (nv)) * L : nullptr, ldi, pf);  \
    for (; j - 1 >= j0; j--)                                                                 \
        panels_full<T, 1, ColA>(M, K, A, lda, P + (j - 1) * ps, ps, C + (j - 1) * L, ldc,    \
                                Cinit ? Cinit + (j - 1) * L : nullptr, ldi, pf);
        if (M == 2) {
            RNNKIT_PANELS_DOWN(4)
        } else {
            RNNKIT_PANELS_DOWN(RNNKIT_NV)
        }
#undef RNNKIT_PANELS_DOWN
        return;
    }
    // Every accumulator is a chain of K dependent FMAs: two rows need more panels at once to
    // keep both FMA units busy (8 chains cover their latency).
#define RNNKIT_PANELS(nv)                                                            \
    for (; j + (nv) <= full; j += (nv))                                              \
        panels_full<T, (nv), ColA>(M, K, A, lda, P + j * ps, ps, C + j * L, ldc,   \
                             Cinit ? Cinit + j * L : nullptr, ldi, pf);
    if (M == 2) {
        RNNKIT_PANELS(4)
    }
    RNNKIT_PANELS(RNNKIT_NV)
#undef RNNKIT_PANELS
    for (; j < full; j++)
        panels_full<T, 1, ColA>(M, K, A, lda, P + j * ps, ps, C + j * L, ldc,
                                Cinit ? Cinit + j * L : nullptr, ldi, pf);
    partial_panel<T, ColA>(M, K, A, lda, P, N, j, j1, C, ldc, Cinit, ldi);
}

// Elements of the packed copy of a K x N matrix.
template <typename T>
static inline long packed_size(int K, int N) {
    return (long)K * ((N + lanes<T>() - 1) / lanes<T>()) * lanes<T>();
}

#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define RNNKIT_SHUFFLEVECTOR 1
#endif

// Sum of a vector's lanes by halving (log2(lanes) vector adds instead of lanes - 1 scalar ones).
template <typename T>
static inline T hsum(typename VecOf<T>::type v) {
#ifdef RNNKIT_SHUFFLEVECTOR
    constexpr int L = lanes<T>();
    if constexpr (L == 16) {
        auto a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                 __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
        auto b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
        auto c = __builtin_shufflevector(b, b, 0, 1) + __builtin_shufflevector(b, b, 2, 3);
        return c[0] + c[1];
    } else if constexpr (L == 8) {
        auto b = __builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7);
        auto c = __builtin_shufflevector(b, b, 0, 1) + __builtin_shufflevector(b, b, 2, 3);
        return c[0] + c[1];
    } else if constexpr (L == 4) {
        auto c = __builtin_shufflevector(v, v, 0, 1) + __builtin_shufflevector(v, v, 2, 3);
        return c[0] + c[1];
    }
#endif
    T sum = T(0);
    for (int l = 0; l < lanes<T>(); l++) sum += v[l];
    return sum;
}

// ---------------------------------------------------------------- dot products
// For one step of a tiny batch (streaming) the weights are read in torch's (out, in) layout,
// one dot product per output: packing them would cost more than the step. L rows are
// computed at once and their L accumulators folded into one vector of L sums by log2(L)
// shuffle-and-add rounds (not one horizontal sum per row), so the output is one vector store.

// Lane p of the fold of (a, b) at block width W: each W-lane block of a and of b is halved
// and the halves added, a's and b's halves interleaved block by block.
template <int L, int W>
static constexpr int fold_index(int p) {
    return p % W < W / 2 ? p / W * W + p % W : L + p / W * W + p % W - W / 2;
}

#ifdef RNNKIT_SHUFFLEVECTOR
#define RNNKIT_FI(o, p) (fold_index<L, W>(p) + (o))
#define RNNKIT_FI2(o) RNNKIT_FI(o, 0), RNNKIT_FI(o, 1)
#define RNNKIT_FI4(o) RNNKIT_FI2(o), RNNKIT_FI(o, 2), RNNKIT_FI(o, 3)
#define RNNKIT_FI8(o) RNNKIT_FI4(o), RNNKIT_FI(o, 4), RNNKIT_FI(o, 5), RNNKIT_FI(o, 6), RNNKIT_FI(o, 7)
#define RNNKIT_FI16(o)                                                                  \
    RNNKIT_FI8(o), RNNKIT_FI(o, 8), RNNKIT_FI(o, 9), RNNKIT_FI(o, 10), RNNKIT_FI(o, 11), \
        RNNKIT_FI(o, 12), RNNKIT_FI(o, 13), RNNKIT_FI(o, 14), RNNKIT_FI(o, 15)
// The lower (O == 0) or upper (O == W / 2) halves of every W-lane block of a and of b,
// interleaved block by block.
template <typename V, int L, int W, int O>
static inline V halves(V a, V b) {
    if constexpr (L == 16)
        return __builtin_shufflevector(a, b, RNNKIT_FI16(O));
    else if constexpr (L == 8)
        return __builtin_shufflevector(a, b, RNNKIT_FI8(O));
    else if constexpr (L == 4)
        return __builtin_shufflevector(a, b, RNNKIT_FI4(O));
    else
        return __builtin_shufflevector(a, b, RNNKIT_FI2(O));
}
template <typename V, int L, int W>
static inline V fold(V a, V b) {
    return halves<V, L, W, 0>(a, b) + halves<V, L, W, W / 2>(a, b);
}

// Transpose of the L x L block v (row i in v[i]) in place: log2(L) rounds of swapping the
// off-diagonal half-blocks of every 2w x 2w diagonal block, w = L/2 ... 1.
template <typename V, int L, int w = L / 2>
static inline void transpose(V* v) {
    for (int r = 0; r < L; r++)
        if (r % (2 * w) < w) {
            const V a = v[r], b = v[r + w];
            v[r] = halves<V, L, 2 * w, 0>(a, b);
            v[r + w] = halves<V, L, 2 * w, w>(a, b);
        }
    if constexpr (w > 1) transpose<V, L, w / 2>(v);
}
#undef RNNKIT_FI16
#undef RNNKIT_FI8
#undef RNNKIT_FI4
#undef RNNKIT_FI2
#undef RNNKIT_FI

// acc[0] = the fold of acc[0..W): lane l holds the sum of acc[bit_reverse(l)]'s lanes.
template <typename V, int L, int W>
static inline void fold_all(V* acc) {
    for (int i = 0; i < W / 2; i++) acc[i] = fold<V, L, W>(acc[2 * i], acc[2 * i + 1]);
    if constexpr (W > 2) fold_all<V, L, W / 2>(acc);
}
#endif

static constexpr int bit_reverse(int a, int lanes) {
    int r = 0;
    for (int m = 1; m < lanes; m <<= 1, a >>= 1) r = (r << 1) | (a & 1);
    return r;
}

// Partial dot products of rows [n, n + L) of W (ldw apart) with x over the vector part of K:
// acc[r] for row n + bit_reverse(r), so that the fold puts row n + l in lane l. All L rows
// advance together: L independent FMA chains, x loaded once per vector.
template <typename T>
static inline void dot_block_part(typename VecOf<T>::type* acc, int K, const T* x, const T* W,
                                  long ldw, int n) {
    typedef typename VecOf<T>::type V;
    constexpr int L = lanes<T>();
    const int kv = K - K % L;
    const T* w = W + (long)n * ldw;
    for (int k = 0; k < kv; k += L) {
        const V xv = load_vec<V>(x + k);
#pragma GCC unroll 16
        for (int r = 0; r < L; r++) acc[r] += xv * load_vec<V>(w + bit_reverse(r, L) * ldw + k);
    }
}

// C[n0:n1] = (dot(x, Wx[n]) + dot(h, Wh[n])) + c1[n] + c2[n]: one or two operands (K2 == 0:
// none) summed before one reduction per row; c1, c2 (bias vectors) may be null.
template <typename T>
static void dots(int n0, int n1, int K1, const T* x, const T* W1, long ld1, int K2, const T* h,
                 const T* W2, long ld2, T* C, const T* c1, const T* c2) {
    typedef typename VecOf<T>::type V;
    constexpr int L = lanes<T>();
    const int kv1 = K1 - K1 % L, kv2 = K2 - K2 % L;
    int n = n0;
#ifdef RNNKIT_SHUFFLEVECTOR
    for (; n + L <= n1; n += L) {
        V acc[L];
        for (int r = 0; r < L; r++) acc[r] = V{};
        dot_block_part<T>(acc, K1, x, W1, ld1, n);
        if (K2) dot_block_part<T>(acc, K2, h, W2, ld2, n);
        fold_all<V, L, L>(acc);
        V out = acc[0];
        if (kv1 < K1 || kv2 < K2) {  // sizes that are not a multiple of the vector
            V tail;
            for (int l = 0; l < L; l++) {
                T t = T(0);
                for (int k = kv1; k < K1; k++) t += x[k] * W1[(long)(n + l) * ld1 + k];
                for (int k = kv2; k < K2; k++) t += h[k] * W2[(long)(n + l) * ld2 + k];
                tail[l] = t;
            }
            out += tail;
        }
        if (c1) out += load_vec<V>(c1 + n);
        if (c2) out += load_vec<V>(c2 + n);
        store_vec(C + n, out);
    }
#endif
    for (; n < n1; n++) {  // a gate's last rows when the hidden size is not a multiple of L
        V acc = V{};
        for (int k = 0; k < kv1; k += L) acc += load_vec<V>(x + k) * load_vec<V>(W1 + (long)n * ld1 + k);
        for (int k = 0; k < kv2; k += L) acc += load_vec<V>(h + k) * load_vec<V>(W2 + (long)n * ld2 + k);
        T out = hsum<T>(acc);
        for (int k = kv1; k < K1; k++) out += x[k] * W1[(long)n * ld1 + k];
        for (int k = kv2; k < K2; k++) out += h[k] * W2[(long)n * ld2 + k];
        if (c1) out += c1[n];
        if (c2) out += c2[n];
        C[n] = out;
    }
}

// Columns [n0, n1) of C (M x N) = Cinit + A (M x K) * Wt^T, Wt (N x K) row-major: dot
// products on torch's layout, for one step of a tiny batch where packing would not pay.
template <typename T>
static void gemm_nt(int M, int K, const T* A, long lda, const T* Wt, long ldw, int n0, int n1,
                    T* C, long ldc, const T* Cinit, long ldi) {
    for (int m = 0; m < M; m++)
        dots<T>(n0, n1, K, A + m * lda, Wt, ldw, 0, nullptr, nullptr, 0, C + m * ldc,
                Cinit ? Cinit + m * ldi : nullptr, nullptr);
}

// Pack panels [j0, j1) of the K x N matrix W into P (see gemm_packed). W is read as
// W[k, n] = S[(col0 + n) * lds + k] when nk (torch's (out, in) weights), else
// S[k * lds + col0 + n].
template <typename T>
static void pack_panels(const T* S, bool nk, long lds, int col0, int K, int N, int j0, int j1,
                        T* P) {
    typedef typename VecOf<T>::type V;
    constexpr int L = lanes<T>();
    for (int j = j0; j < j1; j++) {
        T* p = P + (long)j * K * L;
        int kb = 0;  // torch's layout: whole L x L blocks transposed in registers
#ifdef RNNKIT_SHUFFLEVECTOR
        if (nk && (j + 1) * L <= N) {
            const T* src = S + (long)(col0 + j * L) * lds;
            for (; kb + L <= K; kb += L) {
                V v[L];
                for (int l = 0; l < L; l++) v[l] = load_vec<V>(src + l * lds + kb);
                transpose<V, L>(v);
                for (int l = 0; l < L; l++) store_vec(p + (long)(kb + l) * L, v[l]);
            }
        }
#endif
        for (int l = 0; l < L; l++) {
            const int n = j * L + l;
            if (n >= N) {
                for (int k = 0; k < K; k++) p[k * L + l] = T(0);
            } else if (nk) {
                const T* src = S + (long)(col0 + n) * lds;
                for (int k = kb; k < K; k++) p[k * L + l] = src[k];
            } else {
                for (int k = 0; k < K; k++) p[k * L + l] = S[(long)k * lds + col0 + n];
            }
        }
    }
}

// ---------------------------------------------------------------- activations
// Float vectors use Cephes-style polynomials (about 2 ulp); doubles and scalar tails use
// libm so float64 results match torch to ~1e-15. LSTM spends a fifth of a step here at
// B >= 32 (five activations per unit against 4 * H multiply-adds), so the code avoids
// conversions and divisions: those run on one port at a fraction of the FMA rate.
static inline vf vexp(vf x) {
    x = x > 88.0f ? vf{} + 88.0f : x;
    x = x < -87.0f ? vf{} - 87.0f : x;
    // Adding 1.5 * 2^23 + 127 rounds x * log2(e) to the nearest integer n and leaves n + 127
    // in the low mantissa bits: one FMA instead of float -> int -> float conversions, and the
    // biased exponent of 2^n is those bits shifted into place (|n| <= 127 after the clamps).
    const float shifter = 12582912.0f + 127.0f;
    vf y = x * 1.44269504088896341f + shifter;
    vf nf = y - shifter;
    vf r = x - nf * 0.693359375f + nf * 2.12194440e-4f;
    vf p = 1.9875691500E-4f * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * r * r + r + 1.0f;
    vi bits = (vi)y << 23;
    return p * (vf)bits;
}
// 1 / d for d >= 1. AVX-512: the 14-bit estimate (an exactly specified instruction, so bits do
// not depend on the CPU model) and one Newton step, within about 1 ulp of the quotient; a
// 16-lane division occupies its port for ~10 cycles, and sigmoid/tanh each need one.
static inline vf vrecip(vf d) {
#if RNNKIT_VBYTES == 64 && defined(__x86_64__)
    vf r = __builtin_ia32_rcp14ps512_mask(d, vf{}, (unsigned short)0xffff);
    return r + r * (1.0f - d * r);
#else
    return 1.0f / d;
#endif
}
static inline vf vsigmoid(vf x) { return vrecip(1.0f + vexp(-x)); }
static inline vf vtanh(vf x) {
    vf a = x < 0.0f ? -x : x;
    vf s = x * x;
    vf small = -5.70498872745E-3f * s + 2.06390887954E-2f;
    small = small * s - 5.37397155531E-2f;
    small = small * s + 1.33314422036E-1f;
    small = small * s - 3.33332819422E-1f;
    small = small * s * x + x;
    vf big = 1.0f - 2.0f * vrecip(vexp(a + a) + 1.0f);
    big = x < 0.0f ? -big : big;
    return a < 0.625f ? small : big;
}
static inline vf vrelu(vf x) { return x > 0.0f ? x : vf{}; }

static inline float s_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
static inline double s_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static inline float s_tanh(float x) { return tanhf(x); }
static inline double s_tanh(double x) { return tanh(x); }
template <typename T> static inline T s_relu(T x) { return x > T(0) ? x : T(0); }

// Lane types: pointwise code is written once against these and run with vectors over
// the bulk of the hidden units (float) and scalars over the tail (and for double).
struct LaneF {
    typedef vf P;
    typedef float T;
    static constexpr int L = sizeof(vf) / sizeof(float);
    static P ld(const float* p) { return load_vec<vf>(p); }
    static void st(float* p, P v) { store_vec(p, v); }
    static P sig(P x) { return vsigmoid(x); }
    static P th(P x) { return vtanh(x); }
    static P relu(P x) { return vrelu(x); }
    static P pos(P x) { return x > 0.0f ? vf{} + 1.0f : vf{}; }
};
template <typename TT> struct LaneS {
    typedef TT P;
    typedef TT T;
    static constexpr int L = 1;
    static P ld(const T* p) { return *p; }
    static void st(T* p, P v) { *p = v; }
    static P sig(P x) { return s_sigmoid(x); }
    static P th(P x) { return s_tanh(x); }
    static P relu(P x) { return s_relu(x); }
    static P pos(P x) { return x > T(0) ? T(1) : T(0); }
};

// Runs body(lane_tag, k) over units [k0, k1): vector lanes for float, scalars otherwise.
template <typename T> struct Lanes;
template <> struct Lanes<float> {
    template <typename F> static void run(int k0, int k1, F&& body) {
        int k = k0;
        for (; k + LaneF::L <= k1; k += LaneF::L) body(LaneF(), k);
        for (; k < k1; k++) body(LaneS<float>(), k);
    }
};
template <> struct Lanes<double> {
    template <typename F> static void run(int k0, int k1, F&& body) {
        for (int k = k0; k < k1; k++) body(LaneS<double>(), k);
    }
};

static inline int gate_count(int mode) {
    return mode == MODE_LSTM ? 4 : mode == MODE_GRU ? 3 : 1;
}

// Split [0, n) into nt ranges aligned to the vector width (so all but the last are full
// vectors), returning this thread's range.
template <typename T>
static inline void split_range(int n, int tid, int nt, int* a, int* b) {
    constexpr int L = sizeof(typename VecOf<T>::type) / sizeof(T);
    int blocks = (n + L - 1) / L;
    int lo = (int)((long)blocks * tid / nt) * L, hi = (int)((long)blocks * (tid + 1) / nt) * L;
    *a = lo < n ? lo : n;
    *b = hi < n ? hi : n;
}

// Copy this thread's columns of the (B, Hout) state and, for LSTM, of the (B, H) cell.
template <typename T>
static void copy_states(const void* h_src, void* h_dst, int Hout, int p0, int p1, const void* c_src,
                        void* c_dst, int H, int k0, int k1, int B, bool lstm) {
    for (int b = 0; b < B; b++) {
        for (int p = p0; p < p1; p++) ((T*)h_dst)[(long)b * Hout + p] = ((const T*)h_src)[(long)b * Hout + p];
        if (lstm)
            for (int k = k0; k < k1; k++) ((T*)c_dst)[(long)b * H + k] = ((const T*)c_src)[(long)b * H + k];
    }
}

// Run job.run(tid, nthreads) on args.threads threads; with `optional`, on the caller alone
// when another call holds the threads (the job gives the same bits on any thread count).
template <typename Job, typename Args>
static void launch_threads(const Args& args, bool optional) {
    struct Entry {
        static void call(void* ctx, int tid, int nt) { ((const Job*)ctx)->run(tid, nt); }
    };
    Job job(args);
    if (optional)
        parallel_run_or_alone(args.threads, &Entry::call, &job);
    else
        parallel_run(args.threads, &Entry::call, &job);
}

template <typename Job, typename Args>
static void launch(const Args& args) {
    launch_threads<Job, Args>(args, false);
}

static inline bool row_active(const int64_t* lengths, int b, int t) {
    return lengths == nullptr || t < lengths[b];
}

// Rows [0, n) hold every row still active at step t: the products skip the rows after the
// last active one. Callers sort rows by length (longest first), so at step t the active rows
// are exactly a prefix (in either direction) and finished rows cost no arithmetic, as in a
// packed sequence.
static inline int active_prefix(const int64_t* lengths, int B, int t) {
    if (lengths == nullptr) return B;
    int n = B;
    while (n > 0 && t >= lengths[n - 1]) n--;
    return n;
}

// Addressing shared by Forward and Backward (Args: ForwardArgs or BackwardArgs). Padded
// layout: step t's rows start at row t * B of the per-step tensors and lengths (or none) say
// which are active. Packed layout (offsets): they start at offsets[t], and only the active
// prefix, offsets[t+1] - offsets[t] rows, is stored.
template <typename Args>
static inline long step_row(const Args& a, int t) {
    return a.offsets ? (long)a.offsets[t] : (long)t * a.B;
}
template <typename Args>
static inline int step_rows(const Args& a, int t) {
    return a.offsets ? (int)(a.offsets[t + 1] - a.offsets[t]) : active_prefix(a.lengths, a.B, t);
}
template <typename Args>
static inline bool step_active(const Args& a, int b, int t) {
    return a.offsets ? b < step_rows(a, t) : row_active(a.lengths, b, t);
}

// ---------------------------------------------------------------- forward
// Forward splits rows between threads (see Forward::split_rows) from this many rows per
// thread, and while its packed weights take at most this many bytes (each thread reads all of
// them every step).
constexpr int kForwardRowsPerThread = 16;
constexpr long kForwardRowSplitPanelBytes = 1024 * 1024;

// Rows of input projections a pipelined inference call computes at once (Forward::run_pipelined).
constexpr int kPipelineChunkRows = 8;
// Steps ahead of the recurrence whose input projections a pipelined call prefetches.
constexpr int kPipelinePrefetchSteps = 2;

template <typename T>
struct Forward {
    const ForwardArgs& a;
    int G, GH;
    // Pipelined inference (run_pipelined): chunks of input projections and their progress.
    // Chunk c is steps [chunk_start[c], chunk_start[c + 1]) in the order the recurrence reads
    // them. The first chunks are 1, 2, 4, ... steps (thread 0 waits for the first one), then
    // about kPipelineChunkRows rows each, more when the sequence would need over 64 such.
    static constexpr int kMaxChunks = 128;
    int chunks = 0;
    int chunk_start[kMaxChunks + 1];
    // Each on its own cache line: a thread spinning on one must not pull in the lines the
    // other is writing or reading.
    alignas(64) mutable int next_chunk = 0;          // the first chunk no thread has claimed
    alignas(64) mutable int chunk_done[kMaxChunks];
    char pipeline_pad[64];

    explicit Forward(const ForwardArgs& args) : a(args), G(gate_count(args.mode)), GH(G * args.H) {
        if (!a.pipeline) return;
        const long row_steps = (kPipelineChunkRows + a.B - 1) / a.B;
        const long cap_steps = (a.T + 63) / 64;  // the ramp adds at most 31 chunks
        const long steps = row_steps > cap_steps ? row_steps : cap_steps;
        long start = 0, size = 1;
        chunk_start[0] = 0;
        while (start < a.T && chunks < kMaxChunks) {
            start = chunks + 1 < kMaxChunks ? start + size : a.T;
            chunk_start[++chunks] = (int)(start < a.T ? start : a.T);
            chunk_done[chunks - 1] = 0;
            size = size * 2 < steps ? size * 2 : steps;
        }
    }

    T* gates_at(int t) const { return (T*)a.gates + (a.save ? step_row(a, t) * GH : 0); }
    T* aux_at(int t) const { return (T*)a.aux + (a.save ? step_row(a, t) * a.H : 0); }
    T* m_at(int t) const { return (T*)a.m + (a.save ? step_row(a, t) * a.H : 0); }
    const T* xg_at(int t) const { return (const T*)a.xg + step_row(a, t) * GH; }

    // Packed W_hh^T, one block of panels per gate, then packed W_hr^T, then (x given) packed
    // W_ih^T per gate (see gemm_packed).
    T* gate_panels(int gi) const { return (T*)a.panels + gi * packed_size<T>(a.Hout, a.H); }
    T* proj_panels() const { return (T*)a.panels + G * packed_size<T>(a.Hout, a.H); }
    // `copy` 1: the helper's own copy of packed W_ih in a pipelined call (run_pipelined).
    T* input_panels(int gi, int copy = 0) const {
        if (a.prepacked) copy = 0;  // one kept copy, only read: both cores' caches hold it
        return proj_panels() + (a.whr ? packed_size<T>(a.H, a.Hout) : 0) +
               (copy * G + gi) * packed_size<T>(a.I, a.H);
    }

    // Each thread packs the panels of the units it computes, so they land in its own cache.
    void pack(int k0, int k1, int p0, int p1) const {
        if (a.x) pack_inputs(k0, k1);
        pack_recurrent(k0, k1, p0, p1);
    }

    void pack_inputs(int k0, int k1, int copy = 0) const {
        if (a.prepacked) return;
        constexpr int L = lanes<T>();
        for (int gi = 0; gi < G; gi++)
            pack_panels<T>((const T*)a.wih, true, a.I, gi * a.H, a.I, a.H, k0 / L,
                           (k1 + L - 1) / L, input_panels(gi, copy));
    }

    void pack_recurrent(int k0, int k1, int p0, int p1) const {
        if (a.prepacked) return;
        constexpr int L = lanes<T>();
        for (int gi = 0; gi < G; gi++)
            pack_panels<T>((const T*)a.whh, true, a.Hout, gi * a.H, a.Hout, a.H, k0 / L,
                           (k1 + L - 1) / L, gate_panels(gi));
        if (a.whr)
            pack_panels<T>((const T*)a.whr, true, a.H, 0, a.H, a.Hout, p0 / L, (p1 + L - 1) / L,
                           proj_panels());
    }

    // Whether each step projects its own input (x given, not projected first into xg).
    bool per_step_input() const { return a.x && !a.project_first; }

    // xg = bx + x W_ih^T for the units [k0, k1) of every gate, at rows [b0, b1) of every step
    // (project_first). Each thread writes exactly the part of xg it reads later, so no barrier
    // follows. The tiled product gives every element the same bits whatever the thread
    // count or row grouping (bias, then the same I multiply-adds in order).
    void project_inputs(int k0, int k1, int b0, int b1) const {
        if (k0 >= k1 || b0 >= b1) return;
        if (b0 == 0 && b1 == a.B) {  // one product over the T * B rows, contiguous in x and xg
            project_rows(0, a.T * a.B, k0, k1);
            return;
        }
        for (int t = 0; t < a.T; t++) project_rows((long)t * a.B + b0, b1 - b0, k0, k1);
    }

    // xg rows [row0, row0 + rows) of units [k0, k1) of every gate: bias + x W_ih^T.
    void project_rows(long row0, int rows, int k0, int k1, int copy = 0) const {
        constexpr int L = lanes<T>();
        const T* x = (const T*)a.x + row0 * a.I;
        T* xg = (T*)a.xg + row0 * GH;
        for (int gi = 0; gi < G; gi++) {
            const T* bias = a.bx ? (const T*)a.bx + gi * a.H : nullptr;
            gemm_packed<T>(rows, a.I, x, a.I, input_panels(gi, copy), a.H, k0 / L, (k1 + L - 1) / L,
                           xg + gi * a.H, GH, bias, 0, 0, true);
        }
    }

    // Offset from step t's input projections to the next step's, or 0 at the last step.
    long next_inputs(int t) const {
        const int next = a.reverse ? t - 1 : t + 1;
        return next < 0 || next >= a.T ? 0 : (step_row(a, next) - step_row(a, t)) * GH;
    }

    // Units [k0, k1) of one gate: C (rows x H, GH apart) = init + A (rows x K) * P. The
    // batch-1 product only when the whole step has one active row (see gate_products).
    void product(int rows, int active, int K, const T* A, const T* P, int k0, int k1, T* C,
                 const T* init, long ldi, long pf, bool descending) const {
        constexpr int L = lanes<T>();
        if (active == 1)
            gemv_packed<T>(K, A, P, a.H, k0 / L, (k1 + L - 1) / L, C, init, pf, descending);
        else
            gemm_packed<T>(rows, K, A, K, P, a.H, k0 / L, (k1 + L - 1) / L, C, GH, init, ldi,
                           pf, true, descending);
    }

    // Gate pre-activations of units [k0, k1) for rows [b0, b1) (b1 < 0: all): xg + h_prev
    // W_hh^T (GRU n gate: b_hn + h_prev W_hn^T, the input part is added after the reset gate).
    // Given x instead of xg, x_t W_ih^T is computed here first, into the gates themselves:
    // the projection then never leaves the cache, and runs on the same packed tile (torch's
    // GEMM reaches ~100 GFLOP/s per core at K = input size 256, the tile ~150).
    // The batch-1 product is taken only when the whole step has one active row, so a row gets
    // the same bits whichever thread's share it is in.
    void gate_products(int t, const T* hprev, T* g, int k0, int k1, int b0 = 0,
                       int b1 = -1) const {
        const int active = step_rows(a, t);
        const int rows = (b1 >= 0 && b1 < active ? b1 : active) - b0;
        if (rows <= 0) return;
        hprev += (long)b0 * a.Hout;
        g += (long)b0 * GH;
        const T* xg = per_step_input() ? nullptr : xg_at(t) + (long)b0 * GH;
        const T* x = per_step_input() ? (const T*)a.x + (step_row(a, t) + b0) * a.I : nullptr;
        // Every other step reads the gates' panels in the opposite order (see gemv_packed;
        // the parity of t does that in both directions of time), so the panels read last,
        // still cached, are read first. That pays from 3/4 of L2 on: a sweep in one direction
        // over more than a cache holds evicts every line before its next use, alternate
        // sweeps keep up to a cache's worth (LSTM H=512 at batch 1 on 2 threads, 2 MB a thread
        // against a 2 MB L2: 1.5x faster). At batch 1 it also pays while this thread's panels
        // are at most a few times L1; in between, the L1-resident share is too small to pay
        // for reading against the prefetchers' preferred direction. No bit depends on it.
        const long own_bytes = (long)G * (k1 - k0) * a.Hout * (long)sizeof(T);
        const bool past_l2 = own_bytes >= l2_bytes() / 4 * 3;
        const bool descending = a.pack && (t & 1) &&
                                (past_l2 || (active == 1 && own_bytes <= 160 * 1024));
        for (int gj = 0; gj < G; gj++) {
            const int gi = descending ? G - 1 - gj : gj;
            int off = gi * a.H;
            const T* init = xg ? xg + off : nullptr;
            long ldi = GH, pf = xg ? next_inputs(t) : 0;
            if (a.mode == MODE_GRU && gi == 2) {
                init = a.bhn ? (const T*)a.bhn : nullptr;
                ldi = 0;
                pf = 0;
            }
            if (!a.pack) {
                gemm_nt<T>(rows, a.Hout, hprev, a.Hout, (const T*)a.whh + (long)off * a.Hout,
                           a.Hout, k0, k1, g + off, GH, init, ldi);
                continue;
            }
            if (x) {  // the bias starts the sum (pointwise then adds none)
                product(rows, active, a.I, x, input_panels(gi), k0, k1, g + off,
                        (const T*)a.bx + off, 0, 0, descending);
                init = g + off;
                ldi = GH;
            }
            product(rows, active, a.Hout, hprev, gate_panels(gi), k0, k1, g + off, init, ldi, pf,
                    descending);
        }
    }

    void pointwise(int t, const T* hprev, T* hnew, T* c, int k0, int k1, int b0 = 0,
                   int b1 = -1) const {
        T* g = gates_at(t);
        T* aux = aux_at(t);
        T* m = m_at(t);
        const T* xg = per_step_input() ? nullptr : xg_at(t);  // read by GRU only
        // Given x, the products (or the projections made first) hold the bias.
        const T* bx = a.x ? nullptr : (const T*)a.bx;
        const int H = a.H;
        // The packed layout stores nothing for inactive rows: only their state is carried.
        const bool padded = a.offsets == nullptr;
        for (int b = b0; b < (b1 < 0 ? a.B : b1); b++) {
            bool active = step_active(a, b, t);
            T* gb = g + (long)b * GH;
            const T* hp = hprev + (long)b * a.Hout;
            T* hn = hnew + (long)b * a.Hout;
            if (!active) {
                if (a.whr == nullptr)
                    for (int k = k0; k < k1; k++) hn[k] = hp[k];
                if (padded && a.save && a.mode == MODE_LSTM)
                    for (int k = k0; k < k1; k++) aux[(long)b * H + k] = c[(long)b * H + k];
                if (padded && a.whr)  // saved m feeds dW_hr; keep padded rows finite and zero
                    for (int k = k0; k < k1; k++) m[(long)b * H + k] = T(0);
                continue;
            }
            Lanes<T>::run(k0, k1, [&](auto lane, int k) {
                typedef decltype(lane) Ln;
                // A null bias: the products already hold it (streaming adds it there).
                auto bias = [&](int i) { return bx ? Ln::ld(bx + i) : typename Ln::P{}; };
                if (a.mode == MODE_RNN_TANH || a.mode == MODE_RNN_RELU) {
                    auto v = Ln::ld(gb + k) + bias(k);
                    Ln::st(hn + k, a.mode == MODE_RNN_TANH ? Ln::th(v) : Ln::relu(v));
                } else if (a.mode == MODE_GRU) {
                    auto r = Ln::sig(Ln::ld(gb + k) + bias(k));
                    auto z = Ln::sig(Ln::ld(gb + H + k) + bias(H + k));
                    auto hnp = Ln::ld(gb + 2 * H + k);
                    auto xn = Ln::ld(xg + (long)b * GH + 2 * H + k) + bias(2 * H + k);
                    auto n = Ln::th(xn + r * hnp);
                    auto h = Ln::ld(hp + k);
                    if (a.save) {
                        Ln::st(aux + (long)b * H + k, hnp);
                        Ln::st(gb + k, r);
                        Ln::st(gb + H + k, z);
                        Ln::st(gb + 2 * H + k, n);
                    }
                    Ln::st(hn + k, n + z * (h - n));
                } else {
                    auto i = Ln::sig(Ln::ld(gb + k) + bias(k));
                    auto f = Ln::sig(Ln::ld(gb + H + k) + bias(H + k));
                    auto gg = Ln::th(Ln::ld(gb + 2 * H + k) + bias(2 * H + k));
                    auto o = Ln::sig(Ln::ld(gb + 3 * H + k) + bias(3 * H + k));
                    T* cb = c + (long)b * H;
                    auto cc = f * Ln::ld(cb + k) + i * gg;
                    Ln::st(cb + k, cc);
                    if (a.save) {  // only backward reads the activated gates and c_t
                        Ln::st(aux + (long)b * H + k, cc);
                        Ln::st(gb + k, i);
                        Ln::st(gb + H + k, f);
                        Ln::st(gb + 2 * H + k, gg);
                        Ln::st(gb + 3 * H + k, o);
                    }
                    auto mm = o * Ln::th(cc);
                    Ln::st(a.whr ? m + (long)b * H + k : hn + k, mm);
                }
            });
        }
    }

    // LSTM projection h_new[b0:b1, p0:p1] = m W_hr^T for active rows (b1 < 0: all rows).
    void project(int t, const T* hprev, T* hnew, int p0, int p1, int b0 = 0, int b1 = -1) const {
        constexpr int L = lanes<T>();
        if (b1 < 0) b1 = a.B;
        const int active = step_rows(a, t);
        const int rows = (b1 < active ? b1 : active) - b0;
        const T* m = m_at(t) + (long)b0 * a.H;
        if (rows > 0 && a.pack)
            gemm_packed<T>(rows, a.H, m, a.H, proj_panels(), a.Hout, p0 / L, (p1 + L - 1) / L,
                           hnew + (long)b0 * a.Hout, a.Hout, nullptr, 0, 0, active > 1);
        else if (rows > 0)
            gemm_nt<T>(rows, a.H, m, a.H, (const T*)a.whr, a.H, p0, p1,
                       hnew + (long)b0 * a.Hout, a.Hout, nullptr, 0);
        for (int b = b0; b < b1; b++)
            if (!step_active(a, b, t))
                for (int p = p0; p < p1; p++) hnew[(long)b * a.Hout + p] = hprev[(long)b * a.Hout + p];
    }

    // Step t's output rows of [b0, b1): every row, zero where inactive (padded), or the active
    // ones (packed).
    void emit(int t, const T* hnew, int p0, int p1, int b0, int b1) const {
        T* y = (T*)a.y + step_row(a, t) * a.Hout;
        const int stored = a.offsets ? step_rows(a, t) : a.B;
        for (int b = b0; b < (b1 < stored ? b1 : stored); b++) {
            bool active = step_active(a, b, t);
            for (int p = p0; p < p1; p++)
                y[(long)b * a.Hout + p] = active ? hnew[(long)b * a.Hout + p] : T(0);
        }
    }

    // Rows are independent in the recurrence (they share only the weights), so with enough
    // rows per thread and packed weights small enough to stay in each core's L2, each thread
    // takes whole rows [b0, b1) through every step with no barrier per step (a descheduled or
    // slower thread no longer stalls the other T times). Every row runs the one-thread
    // computation (all units, the same products), so the bits do not change. With lengths or
    // the packed layout (rows longest first) the shares hold equal numbers of active
    // row-steps, not of rows: the first thread's long rows would otherwise run alone once the
    // short ones end.
    bool split_rows(int tid, int nt, int* b0, int* b1) const {
        const long bytes = (G * packed_size<T>(a.Hout, a.H) +
                            (a.whr ? packed_size<T>(a.H, a.Hout) : 0)) * (long)sizeof(T);
        if (nt < 2 || !a.pack || a.B < kForwardRowsPerThread * nt ||
            bytes > kForwardRowSplitPanelBytes)
            return false;
        if (a.lengths == nullptr && a.offsets == nullptr) {
            *b0 = (int)((long)a.B * tid / nt);
            *b1 = (int)((long)a.B * (tid + 1) / nt);
            return true;
        }
        auto steps = [&](int b) -> long {
            if (a.offsets == nullptr)
                return a.lengths[b] < a.T ? (long)a.lengths[b] : (long)a.T;
            // Packed layout: the counts never increase, so row b runs up to the first step
            // with at most b rows.
            int lo = 0, hi = a.T;
            while (lo < hi) {
                const int mid = lo + (hi - lo) / 2;
                if (step_rows(a, mid) > b)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            return (long)lo;
        };
        long total = 0;
        for (int b = 0; b < a.B; b++) total += steps(b);
        // Share i starts at the first row whose preceding rows hold total * i / nt steps.
        auto start = [&](int i) {
            if (i >= nt) return a.B;
            const long goal = total * i / nt;
            long sum = 0;
            int b = 0;
            while (b < a.B && sum < goal) sum += steps(b++);
            return b;
        };
        *b0 = start(tid);
        *b1 = start(tid + 1);
        return true;
    }

    void run(int tid, int nt) const {
        if (a.pipeline && a.project_first && nt >= 2) {
            run_pipelined(tid);
            return;
        }
        const int B = a.B, H = a.H, Hout = a.Hout;
        int k0, k1, p0, p1;
        split_range<T>(H, tid, nt, &k0, &k1);
        split_range<T>(Hout, tid, nt, &p0, &p1);
        if (a.pack) pack(k0, k1, p0, p1);  // each thread packs its units' share of one copy
        int b0 = 0, b1 = B;
        const bool rows = split_rows(tid, nt, &b0, &b1);
        if (rows) {  // whole rows: every unit, all the panels
            k0 = p0 = 0;
            k1 = H;
            p1 = Hout;
        }
        load_states(k0, k1, p0, p1, b0, b1);
        parallel_barrier();  // every thread's share of the panels and of h0 is in place
        if (a.project_first) project_inputs(k0, k1, b0, b1);
        time_loop(k0, k1, p0, p1, b0, b1, !rows, false);
    }

    // This thread's share of h0 (and c0) into the first state buffer (see time_loop).
    void load_states(int k0, int k1, int p0, int p1, int b0, int b1) const {
        T* buf0 = (T*)a.work;
        const long h_off = (long)b0 * a.Hout, c_off = (long)b0 * a.H;
        const bool lstm = a.mode == MODE_LSTM;
        copy_states<T>((const T*)a.h0 + h_off, buf0 + h_off, a.Hout, p0, p1,
                       lstm ? (const T*)a.c0 + c_off : nullptr, buf0 + 2L * a.B * a.Hout + c_off,
                       a.H, k0, k1, b1 - b0, lstm);
    }

    // Steps through time for units [k0, k1) (outputs [p0, p1)) of rows [b0, b1), from the
    // states load_states put in place to hn/cn. `shared`: the other threads compute the rest
    // of every step (a barrier after each step and before the projection reads it).
    // `pipelined`: each step first waits for its chunk of input projections (run_pipelined).
    void time_loop(int k0, int k1, int p0, int p1, int b0, int b1, bool shared,
                   bool pipelined) const {
        const int B = a.B, H = a.H, Hout = a.Hout;
        T* buf0 = (T*)a.work;
        T* buf1 = buf0 + (long)B * Hout;
        T* c = buf1 + (long)B * Hout;
        const bool lstm = a.mode == MODE_LSTM;
        const long h_off = (long)b0 * Hout, c_off = (long)b0 * H;
        T* hprev = buf0;
        T* hnew = buf1;
        for (int s = 0, chunk = 0; s < a.T; s++) {
            int t = a.reverse ? a.T - 1 - s : s;
            if (pipelined) {
                if (s == chunk_start[chunk]) await_chunk(chunk++);
                prefetch_projections(s + kPipelinePrefetchSteps, chunk - 1);
            }
            gate_products(t, hprev, gates_at(t), k0, k1, b0, b1);
            pointwise(t, hprev, hnew, c, k0, k1, b0, b1);
            if (a.whr) {
                if (shared) parallel_barrier();
                project(t, hprev, hnew, p0, p1, b0, b1);
            }
            emit(t, hnew, p0, p1, b0, b1);
            if (shared) parallel_barrier();
            T* tmp = hprev;
            hprev = hnew;
            hnew = tmp;
        }
        copy_states<T>(hprev + h_off, (T*)a.hn + h_off, Hout, p0, p1, c + c_off,
                       lstm ? (T*)a.cn + c_off : nullptr, H, k0, k1, b1 - b0, lstm);
    }

    // ForwardArgs::pipeline. Thread 0 runs the one-thread computation (every unit and row)
    // while a helper projects the input in chunks of steps, in the order the recurrence
    // reads them. Each packs its own copy of W_ih, so neither waits for the other's packing
    // and each copy stays in the cache of the core that reads it, call after call. A chunk
    // nobody has claimed yet when thread 0 needs it, thread 0 projects itself, so a late or
    // descheduled helper never stalls it. Every chunk is the same tiled product as the
    // one-thread projection (a row's bits do not depend on its tile), so the bits are one
    // thread's. More helpers would only split the same chunks: they return at once.
    void run_pipelined(int tid) const {
        if (tid > 1) return;
        if (tid == 1) {
            pack_inputs(0, a.H, 1);
            // Another call running beside this one needs the core more: thread 0 then
            // projects what is left itself.
            for (int chunk; calls_in_flight() < 2 && (chunk = claim_chunk()) < chunks;)
                project_chunk(chunk, 1);
            return;
        }
        pack_inputs(0, a.H);
        pack_recurrent(0, a.H, 0, a.Hout);
        load_states(0, a.H, 0, a.Hout, 0, a.B);
        time_loop(0, a.H, 0, a.Hout, 0, a.B, false, true);
    }

    // Asks for step s's GRU n-gate input projections, once projected, to be brought into this
    // core's cache: the helper wrote them, so they sit modified in its core's cache, and the
    // pointwise step would wait for each line's transfer. The other gates' projections the
    // products already prefetch a step ahead (gate_products' `pf`); prefetching them again
    // cost LSTM H=64 3-4% (GRU H=64 gains about 9%). `from`: a chunk at or before step s's.
    void prefetch_projections(int s, int from) const {
        if (a.mode != MODE_GRU || s >= a.T) return;
        int chunk = from;
        while (chunk_start[chunk + 1] <= s) chunk++;
        if (!__atomic_load_n(&chunk_done[chunk], __ATOMIC_ACQUIRE)) return;
        const int t = a.reverse ? a.T - 1 - s : s;
        for (int b = 0; b < a.B; b++) {
            const char* n_gate = (const char*)(xg_at(t) + (long)b * GH + 2L * a.H);
            for (long off = 0; off < (long)a.H * (long)sizeof(T); off += 64)
                __builtin_prefetch(n_gate + off, 0, 3);
        }
    }

    int claim_chunk() const { return __atomic_fetch_add(&next_chunk, 1, __ATOMIC_RELAXED); }

    // The rows of xg of one chunk's steps.
    void project_chunk(int chunk, int copy) const {
        const int s0 = chunk_start[chunk], s1 = chunk_start[chunk + 1];
        const int t0 = a.reverse ? a.T - s1 : s0;
        project_rows((long)t0 * a.B, (s1 - s0) * a.B, 0, a.H, copy);
        __atomic_store_n(&chunk_done[chunk], 1, __ATOMIC_RELEASE);
    }

    void await_chunk(int chunk) const {
        int spins = 0;
        while (!__atomic_load_n(&chunk_done[chunk], __ATOMIC_ACQUIRE)) {
            if (__atomic_load_n(&next_chunk, __ATOMIC_RELAXED) <= chunk) {
                const int claimed = claim_chunk();  // unclaimed: no one is on it, do it here
                if (claimed < chunks) project_chunk(claimed, 0);
            } else {
                wait_pause(spins);
            }
        }
    }
};

// ---------------------------------------------------------------- backward
// Backward splits rows between threads (see Backward::split_rows) from this many rows per
// thread, and while its packed weights take at most this many bytes (each thread then reads
// all of them every step: they must stay in its L2).
constexpr int kRowsPerThread = 16;
constexpr long kRowSplitPanelBytes = 1024 * 1024;

template <typename T>
struct Backward {
    const BackwardArgs& a;
    int G, GH;
    explicit Backward(const BackwardArgs& args) : a(args), G(gate_count(args.mode)), GH(G * args.H) {}

    // Time index of the step processed just before t in the forward pass, or -1 (initial state).
    int prev_step(int b, int t) const {
        if (!a.reverse) return t - 1;
        return t + 1 < a.T && step_active(a, b, t + 1) ? t + 1 : -1;
    }

    void pointwise(int t, const T* dtot, const T* dm, T* dc, int k0, int k1, int b0,
                   int b1) const {
        const int H = a.H;
        const long base = step_row(a, t) * GH;
        for (int b = b0; b < b1; b++) {
            T* dgx = (T*)a.dgx + base + (long)b * GH;
            T* dgh = (T*)a.dgh + base + (long)b * GH;
            if (!step_active(a, b, t)) {
                if (a.offsets) continue;  // the packed layout stores no inactive rows
                for (int gi = 0; gi < G; gi++)
                    for (int k = k0; k < k1; k++) {
                        dgx[gi * H + k] = T(0);
                        dgh[gi * H + k] = T(0);
                    }
                continue;
            }
            const T* g = (const T*)a.gates + base + (long)b * GH;
            const T* dh = (a.whr ? dm + (long)b * H : dtot + (long)b * a.Hout);
            const int tp = prev_step(b, t);
            Lanes<T>::run(k0, k1, [&](auto lane, int k) {
                typedef decltype(lane) Ln;
                typedef typename Ln::P P;
                const P one = P{} + T(1);
                const P d = Ln::ld(dh + k);
                if (a.mode == MODE_RNN_TANH || a.mode == MODE_RNN_RELU) {
                    P h = Ln::ld((const T*)a.y + step_row(a, t) * a.Hout + (long)b * a.Hout + k);
                    Ln::st(dgx + k, a.mode == MODE_RNN_TANH ? d * (one - h * h) : d * Ln::pos(h));
                } else if (a.mode == MODE_GRU) {
                    P r = Ln::ld(g + k), z = Ln::ld(g + H + k), n = Ln::ld(g + 2 * H + k);
                    P hnp = Ln::ld((const T*)a.aux + step_row(a, t) * H + (long)b * H + k);
                    const T* hp_row = tp >= 0 ? (const T*)a.y + step_row(a, tp) * a.Hout + (long)b * a.Hout
                                              : (const T*)a.h0 + (long)b * a.Hout;
                    P hp = Ln::ld(hp_row + k);
                    P dnp = d * (one - z) * (one - n * n);
                    P dr = dnp * hnp * r * (one - r);
                    P dz = d * (hp - n) * z * (one - z);
                    Ln::st(dgx + k, dr);
                    Ln::st(dgx + H + k, dz);
                    Ln::st(dgx + 2 * H + k, dnp);
                    Ln::st(dgh + k, dr);
                    Ln::st(dgh + H + k, dz);
                    Ln::st(dgh + 2 * H + k, dnp * r);
                } else {
                    P i = Ln::ld(g + k), f = Ln::ld(g + H + k), gg = Ln::ld(g + 2 * H + k),
                      o = Ln::ld(g + 3 * H + k);
                    const T* aux = (const T*)a.aux;
                    P c = Ln::ld(aux + step_row(a, t) * H + (long)b * H + k);
                    const T* cp_row = tp >= 0 ? aux + step_row(a, tp) * H + (long)b * H
                                              : (const T*)a.c0 + (long)b * H;
                    P cp = Ln::ld(cp_row + k);
                    P tc = Ln::th(c);
                    T* dcb = dc + (long)b * H;
                    P dcc = Ln::ld(dcb + k) + d * o * (one - tc * tc);
                    Ln::st(dcb + k, dcc * f);
                    Ln::st(dgx + k, dcc * gg * i * (one - i));
                    Ln::st(dgx + H + k, dcc * cp * f * (one - f));
                    Ln::st(dgx + 2 * H + k, dcc * i * (one - gg * gg));
                    Ln::st(dgx + 3 * H + k, d * tc * o * (one - o));
                }
            });
        }
    }

    T* proj_panels() const { return (T*)a.panels + packed_size<T>(GH, a.Hout); }

    // Rows are independent in BPTT (they share only the weights), so with enough rows per
    // thread and the packed weights small enough to stay in each core's L2, each thread takes
    // whole rows through every step with no barrier per step: a thread that is descheduled, or
    // slower, no longer stalls the other at each of the T steps. Every row then runs exactly
    // the one-thread computation (all units, same products), so the bits do not change. With
    // lengths a thread's share could shrink to one active row, whose product takes the
    // batch-1 path (another summation order), so lengths keep the split over units.
    bool split_rows(int nt) const {
        const long bytes = (packed_size<T>(GH, a.Hout) + (a.whr ? packed_size<T>(a.Hout, a.H) : 0)) *
                           (long)sizeof(T);
        return nt > 1 && a.lengths == nullptr && a.offsets == nullptr &&
               a.B >= kRowsPerThread * nt &&
               bytes <= kRowSplitPanelBytes;
    }

    void run(int tid, int nt) const {
        constexpr int L = lanes<T>();
        const int B = a.B, H = a.H, Hout = a.Hout;
        T* rec0 = (T*)a.work;
        T* rec1 = rec0 + (long)B * Hout;
        T* dtot = rec1 + (long)B * Hout;
        T* dc = dtot + (long)B * Hout;
        T* dm = dc + (long)B * H;
        int k0, k1, p0, p1;
        split_range<T>(H, tid, nt, &k0, &k1);
        split_range<T>(Hout, tid, nt, &p0, &p1);
        const bool lstm = a.mode == MODE_LSTM;
        // Panels of W_hh (K = G*H rows, the state's columns) and of W_hr (K = Hout, H columns),
        // each thread packing its share of the columns.
        pack_panels<T>((const T*)a.whh, false, Hout, 0, GH, Hout, p0 / L, (p1 + L - 1) / L,
                       (T*)a.panels);
        if (a.whr)
            pack_panels<T>((const T*)a.whr, false, H, 0, Hout, H, k0 / L, (k1 + L - 1) / L,
                           proj_panels());
        const bool rows = split_rows(nt);
        int b0 = 0, b1 = B;
        if (rows) {  // every thread reads all the panels
            parallel_barrier();
            b0 = (int)((long)B * tid / nt);
            b1 = (int)((long)B * (tid + 1) / nt);
            k0 = p0 = 0;
            k1 = H;
            p1 = Hout;
        }
        const long h_off = (long)b0 * Hout, c_off = (long)b0 * H;
        copy_states<T>((const T*)a.dhn + h_off, rec0 + h_off, Hout, p0, p1,
                       lstm ? (const T*)a.dcn + c_off : nullptr, dc + c_off, H, k0, k1, b1 - b0, lstm);
        T* rec = rec0;
        T* rec_next = rec1;
        for (int s = 0; s < a.T; s++) {
            int t = a.reverse ? s : a.T - 1 - s;
            const long row = step_row(a, t);
            const T* dy = (const T*)a.dy + row * Hout;
            T* dhtot = a.dhtot ? (T*)a.dhtot + row * Hout : nullptr;
            for (int b = b0; b < b1; b++) {
                bool active = step_active(a, b, t);
                for (int p = p0; p < p1; p++) {
                    long i = (long)b * Hout + p;
                    T v = rec[i];
                    if (active) v += dy[i];
                    dtot[i] = v;
                    if (dhtot && (active || !a.offsets)) dhtot[i] = active ? v : T(0);
                }
            }
            // This thread's rows up to the last active one.
            const int last = step_rows(a, t);
            const int m = (last < b1 ? last : b1) - b0;
            if (a.whr) {
                if (!rows) parallel_barrier();
                if (m > 0)
                    gemm_packed<T>(m, Hout, dtot + h_off, Hout, proj_panels(), H, k0 / L,
                                   (k1 + L - 1) / L, dm + c_off, H, nullptr, 0);
            }
            pointwise(t, dtot, dm, dc, k0, k1, b0, b1);
            if (!rows) parallel_barrier();
            const T* dgh = (const T*)a.dgh + row * GH;
            for (int b = b0; b < b1; b++) {
                bool active = step_active(a, b, t);
                const T* z = (const T*)a.gates + row * GH + (long)b * GH + H;
                for (int p = p0; p < p1; p++) {
                    long i = (long)b * Hout + p;
                    rec_next[i] = !active ? dtot[i] : a.mode == MODE_GRU ? dtot[i] * z[p] : T(0);
                }
            }
            // Alternate sweeps from 3/4 of L2 on, as the forward's (gate_products).
            const bool descending = (s & 1) && (long)GH * (p1 - p0) * (long)sizeof(T) >=
                                                   l2_bytes() / 4 * 3;
            if (m > 0)  // rows after the last active one carry their gradient unchanged
                gemm_packed<T>(m, GH, dgh + (long)b0 * GH, GH, (const T*)a.panels, Hout, p0 / L,
                               (p1 + L - 1) / L, rec_next + h_off, Hout, rec_next + h_off, Hout,
                               0, false, descending);
            T* tmp = rec;
            rec = rec_next;
            rec_next = tmp;
        }
        copy_states<T>(rec + h_off, (T*)a.dh0 + h_off, Hout, p0, p1, dc + c_off,
                       lstm ? (T*)a.dc0 + c_off : nullptr, H, k0, k1, b1 - b0, lstm);
    }
};

// ---------------------------------------------------------------- streaming step
template <typename T>
struct Stream {
    const StreamArgs& s;
    explicit Stream(const StreamArgs& args) : s(args) {}

    // Gate pre-activations of this thread's units for every row: b_ih + b_hh + x W_ih^T +
    // h W_hh^T summed per unit before one reduction. GRU's n gate keeps its input part (in
    // xg, with b_in) apart from its recurrent part (in gates, with b_hn): the reset gate
    // multiplies only the latter.
    // With several rows, a chunk of units' weights (up to 32 KB, within every L1 we run on)
    // serves every row before the next chunk is read: the weights come from L2 or beyond once
    // per step, not once per row (at 512 units, 6-8 MB per row from L3). Weights that fit
    // whole are not split (a second call per row cost RNN-64 3-7%). Chunks start at multiples
    // of the vector width from the range's start, so every output is computed as without.
    static int units_per_chunk(int B, int K, int n) {
        constexpr int L = lanes<T>();
        constexpr long budget = 32L * 1024;
        const long per_unit = (long)K * (long)sizeof(T);
        if (B == 1 || (long)n * per_unit <= budget) return n;
        const int fit = (int)(budget / per_unit);
        return fit < L ? L : fit - fit % L;
    }

    void products(const T* x, int in, const T* hprev, const uintptr_t* w, T* xg, T* gates,
                  int k0, int k1) const {
        const int G = gate_count(s.mode), H = s.H, GH = G * H, Hout = s.Hout;
        const T *wih = (const T*)w[0], *whh = (const T*)w[1];
        const T *bih = (const T*)w[2], *bhh = (const T*)w[3];
        const int chunk = units_per_chunk(s.B, in + Hout, k1 - k0);
        for (int gi = 0; gi < G; gi++) {
            for (int c0 = gi * H + k0, end = gi * H + k1; c0 < end; c0 += chunk) {
                const int c1 = end - c0 < chunk ? end : c0 + chunk;
                for (int b = 0; b < s.B; b++) {
                    const T* xb = x + (long)b * in;
                    const T* hb = hprev + (long)b * Hout;
                    T* gb = gates + (long)b * GH;
                    if (s.mode == MODE_GRU && gi == 2) {
                        dots<T>(c0, c1, in, xb, wih, in, 0, nullptr, nullptr, 0,
                                xg + (long)b * GH, bih, nullptr);
                        dots<T>(c0, c1, Hout, hb, whh, Hout, 0, nullptr, nullptr, 0, gb, bhh,
                                nullptr);
                    } else {
                        dots<T>(c0, c1, in, xb, wih, in, Hout, hb, whh, Hout, gb, bih, bhh);
                    }
                }
            }
        }
    }

    // out[0..16) = sum_k a[k] P[k*16 + 0..16) over one panel's K rows, KS independent chains
    // per vector summed in a fixed order (the same bits on every thread count).
    static void panel_sums(const T* P, int K, const T* a, T* out) {
        typedef typename VecOf<T>::type V;
        constexpr int L = lanes<T>(), NV = 16 / L, KS = 4;
        V acc[KS][NV];
        for (int q = 0; q < KS; q++)
            for (int v = 0; v < NV; v++) acc[q][v] = V{};
        int k = 0;
        for (; k + KS <= K; k += KS)
            for (int q = 0; q < KS; q++)
                for (int v = 0; v < NV; v++)
                    acc[q][v] += a[k + q] * load_vec<V>(P + (long)(k + q) * 16 + v * L);
        for (; k < K; k++)
            for (int v = 0; v < NV; v++) acc[0][v] += a[k] * load_vec<V>(P + (long)k * 16 + v * L);
        for (int v = 0; v < NV; v++)
            store_vec(out + v * L, (acc[0][v] + acc[1][v]) + (acc[2][v] + acc[3][v]));
    }

    // products() on packed panels (StreamArgs::packed): each 16-unit panel of a gate is one
    // contiguous stream over [x | h] (the prefetchers' best case, ~1.8x the bandwidth of dot
    // products on torch's layout), panels [u0, u1) of every gate on this thread. `odd`: the
    // step's parity on this thread; from 3/4 of L2 on, odd steps take the panels last first,
    // as the whole-sequence kernels do (gate_products), so a step starts on the panels the
    // one before read last. No bit depends on the order.
    void products_packed(const T* x, int in, const T* hprev, const uintptr_t* w, T* xg,
                         T* gates, int u0, int u1, bool odd) const {
        const int G = gate_count(s.mode), H = s.H, GH = G * H, Hout = s.Hout;
        const int nb = (H + 15) / 16, K = in + Hout;
        const T *panels = (const T*)w[0], *bias = (const T*)w[1], *bhn = (const T*)w[2];
        const long own_bytes = (long)G * (u1 - u0) * K * 16 * (long)sizeof(T);
        const bool descending = odd && own_bytes >= l2_bytes() / 4 * 3;
        const int units = u1 - u0;
        T sx[16], sh[16];
        // Panel by panel, each serving every row (a panel is 16 units: see units_per_chunk).
        for (int gate = 0; gate < G; gate++) {
            const int gi = descending ? G - 1 - gate : gate;
            for (int i = 0; i < units; i++) {
                const int u = descending ? u1 - 1 - i : u0 + i;
                const T* P = panels + ((long)gi * nb + u) * K * 16;
                const int j0 = u * 16, n = H - j0 < 16 ? H - j0 : 16;
                for (int b = 0; b < s.B; b++) {
                    T* gb = gates + (long)b * GH;
                    panel_sums(P, in, x + (long)b * in, sx);
                    panel_sums(P + (long)in * 16, Hout, hprev + (long)b * Hout, sh);
                    if (s.mode == MODE_GRU && gi == 2) {  // the reset gate scales h's part only
                        for (int j = 0; j < n; j++) {
                            xg[(long)b * GH + 2 * H + j0 + j] = sx[j] + bias[2 * H + j0 + j];
                            gb[2 * H + j0 + j] = sh[j] + (bhn ? bhn[j0 + j] : T(0));
                        }
                    } else {
                        for (int j = 0; j < n; j++)
                            gb[gi * H + j0 + j] = (sx[j] + sh[j]) + bias[gi * H + j0 + j];
                    }
                }
            }
        }
    }

    void run(int tid, int nt) const {
        const int G = gate_count(s.mode), GH = G * s.H, B = s.B, H = s.H, Hout = s.Hout;
        const bool lstm = s.mode == MODE_LSTM;
        T* xg = (T*)s.work;
        T* gates = xg + (long)B * GH;
        T* aux = gates + (long)B * GH;
        T* m = aux + (long)B * H;
        int k0, k1, p0, p1, u0 = 0, u1 = 0;
        split_range<T>(H, tid, nt, &k0, &k1);
        split_range<T>(Hout, tid, nt, &p0, &p1);
        if (s.packed) {  // whole 16-unit panels per thread
            const int nb = (H + 15) / 16;
            u0 = (int)((long)nb * tid / nt);
            u1 = (int)((long)nb * (tid + 1) / nt);
            k0 = u0 * 16 < H ? u0 * 16 : H;
            k1 = u1 * 16 < H ? u1 * 16 : H;
        }
        const T* x = (const T*)s.x;
        int in = s.I;
        static thread_local unsigned steps_on_this_thread = 0;
        const bool odd = (steps_on_this_thread++ & 1) != 0;
        for (int l = 0; l < s.layers; l++) {
            const uintptr_t* w = s.weights + 5 * l;
            const T* hprev = (const T*)s.h + (long)l * B * Hout;
            T* hnew = (T*)s.hn + (long)l * B * Hout;
            if (s.packed)
                products_packed(x, in, hprev, w, xg, gates, u0, u1, odd);
            else
                products(x, in, hprev, w, xg, gates, k0, k1);
            T* c = lstm ? (T*)s.cn + (long)l * B * H : nullptr;
            if (lstm) {  // pointwise updates the cell in place
                const T* c_in = (const T*)s.c + (long)l * B * H;
                for (int b = 0; b < B; b++)
                    for (int k = k0; k < k1; k++) c[(long)b * H + k] = c_in[(long)b * H + k];
            }
            ForwardArgs f = {};
            f.mode = s.mode;
            f.T = 1;
            f.B = B;
            f.H = H;
            f.Hout = Hout;
            f.xg = xg;
            f.bx = nullptr;  // in the products
            f.whr = (const void*)w[4];
            f.gates = gates;
            f.aux = aux;
            f.m = m;
            const Forward<T> step(f);
            step.pointwise(0, hprev, hnew, c, k0, k1);
            if (f.whr) {
                parallel_barrier();
                step.project(0, hprev, hnew, p0, p1);
            }
            parallel_barrier();  // the next layer reads all of hnew
            x = hnew;
            in = Hout;
        }
    }
};

// ---------------------------------------------------------------- standalone GEMM
// K is cut into chunks of at most kGemmChunk, each packed as its own set of panels, and a
// thread's rows into blocks whose part of A in a chunk takes about kGemmBlockBytes, so the
// block stays in L2 while every panel of the chunk passes over it (each panel slice from L1,
// see panels_full).
constexpr int kGemmChunk = 384;
constexpr long kGemmBlockBytes = 192 * 1024;

// C = A * B (GemmArgs). Threads pack disjoint panels of B, meet at one barrier, then each
// takes its own whole row tiles through every chunk of K and every panel. C[m, n] is the sum
// over k in order (a chunk's tiles start from what the previous chunk left in C), whatever
// the thread count or blocking, so the bits depend on neither.
template <typename T>
struct Gemm {
    GemmArgs g;
    explicit Gemm(const GemmArgs& args) : g(args) {}

    // Chunk [k0, k0 + kc) of B packed: panels of kc x L, starting at element k0 * padded N.
    T* chunk_panels(int k0) const {
        constexpr int L = lanes<T>();
        return (T*)g.panels + (long)k0 * ((g.N + L - 1) / L) * L;
    }

    void pack(int tid, int nt) const {
        constexpr int L = lanes<T>();
        const int np = (g.N + L - 1) / L;
        const int j0 = (int)((long)np * tid / nt), j1 = (int)((long)np * (tid + 1) / nt);
        const T* B = (const T*)g.b;
        for (int k0 = 0; k0 < g.K; k0 += kGemmChunk) {
            const int kc = g.K - k0 < kGemmChunk ? g.K - k0 : kGemmChunk;
            pack_panels<T>(g.b_nk ? B + k0 : B + (long)k0 * g.ldb, g.b_nk, g.ldb, 0, kc, g.N,
                           j0, j1, chunk_panels(k0));
        }
    }

    void run(int tid, int nt) const {
        pack(tid, nt);
        parallel_barrier();
        const int tiles = (g.M + RNNKIT_MR - 1) / RNNKIT_MR;
        const int m0 = (int)((long)tiles * tid / nt) * RNNKIT_MR;
        const int end = (int)((long)tiles * (tid + 1) / nt) * RNNKIT_MR;
        const int m1 = end < g.M ? end : g.M;
        const int np = (g.N + lanes<T>() - 1) / lanes<T>();
        const T* A = (const T*)g.a;
        T* C = (T*)g.c;
        for (int k0 = 0; k0 < g.K; k0 += kGemmChunk) {
            const int kc = g.K - k0 < kGemmChunk ? g.K - k0 : kGemmChunk;
            int block = (int)(kGemmBlockBytes / ((long)kc * (long)sizeof(T))) / RNNKIT_MR * RNNKIT_MR;
            if (block < RNNKIT_MR) block = RNNKIT_MR;
            for (int r0 = m0; r0 < m1; r0 += block) {
                const int rows = m1 - r0 < block ? m1 - r0 : block;
                T* c = C + (long)r0 * g.ldc;
                const T* init = k0 == 0 ? nullptr : c;
                if (g.a_km)
                    gemm_packed<T, true>(rows, kc, A + (long)k0 * g.lda + r0, g.lda,
                                         chunk_panels(k0), g.N, 0, np, c, g.ldc, init, g.ldc, 0,
                                         true);
                else
                    gemm_packed<T>(rows, kc, A + (long)r0 * g.lda + k0, g.lda, chunk_panels(k0),
                                   g.N, 0, np, c, g.ldc, init, g.ldc, 0, true);
            }
        }
    }
};

template <typename T>
static void gemm_entry(const GemmArgs& args) {
    GemmArgs a = args;
    if (a.M == 0 || a.N == 0) return;
    a.panels = thread_scratch((size_t)packed_size<T>(a.K, a.N) * sizeof(T));
    launch<Gemm<T>, GemmArgs>(a);
}

// Whether the cache's panels hold what `key` describes: sealed (a packing call finished
// writing them) and the same key. A packing call elsewhere unseals first, so a mismatch here
// only costs a repack.
static bool panels_hold(const PanelCache& cache, const int64_t* key) {
    if (__atomic_load_n(&cache.header[kPanelKeyWords], __ATOMIC_ACQUIRE) != 1) return false;
    for (int i = 0; i < kPanelKeyWords; i++)
        if (__atomic_load_n(&cache.header[i], __ATOMIC_RELAXED) != key[i]) return false;
    return true;
}

static void seal_panels(const PanelCache& cache, const int64_t* key) {
    for (int i = 0; i < kPanelKeyWords; i++)
        __atomic_store_n(&cache.header[i], key[i], __ATOMIC_RELAXED);
    __atomic_store_n(&cache.header[kPanelKeyWords], (int64_t)1, __ATOMIC_RELEASE);
}

template <typename T>
static void forward_entry(const ForwardArgs& args) {
    ForwardArgs a = args;
    a.prepacked = 0;
    int64_t key[kPanelKeyWords];
    bool keep = false;  // pack into the caller's cache and seal it afterwards
    if (a.pack) {
        const int G = gate_count(a.mode);
        const long one_copy = G * packed_size<T>(a.Hout, a.H) +
                              (a.whr ? packed_size<T>(a.H, a.Hout) : 0) +
                              (a.x ? G * packed_size<T>(a.I, a.H) : 0);
        if (a.cache && a.x && a.cache->capacity >= one_copy) {
            for (int i = 0; i < kPanelKeyWords - 1; i++) key[i] = a.cache->key[i];
            key[kPanelKeyWords - 1] = lanes<T>() * 64 + (int64_t)sizeof(T);
            a.panels = a.cache->panels;
            a.prepacked = panels_hold(*a.cache, key);
            if (!a.prepacked) {
                keep = true;
                __atomic_store_n(&a.cache->header[kPanelKeyWords], (int64_t)0, __ATOMIC_RELEASE);
                a.pipeline = 0;  // the helper's own copy of W_ih has no room in the cache
            }
        } else {
            const long n = one_copy + (a.x && a.pipeline ? G * packed_size<T>(a.I, a.H) : 0);
            a.panels = thread_scratch((size_t)n * sizeof(T));
        }
    }
    // A pipelined call's helper only speeds it up: while another Python thread's call runs,
    // this one runs alone (and a helper already started stops taking chunks), so concurrent
    // batch-1 requests keep running side by side, as on one thread each.
    calls_enter();
    if (a.pipeline && calls_in_flight() > 1) a.threads = 1;
    launch_threads<Forward<T>, ForwardArgs>(a, a.pipeline != 0);
    calls_leave();
    if (keep) seal_panels(*a.cache, key);
}

template <typename T>
static void backward_entry(const BackwardArgs& args) {
    BackwardArgs a = args;
    const int GH = gate_count(a.mode) * a.H;
    long n = packed_size<T>(GH, a.Hout) + (a.whr ? packed_size<T>(a.Hout, a.H) : 0);
    a.panels = thread_scratch((size_t)n * sizeof(T));
    launch<Backward<T>, BackwardArgs>(a);
}

static const KernelTable table = {
    RNNKIT_ISA_NAME,
    &launch<Stream<float>, StreamArgs>,
    &launch<Stream<double>, StreamArgs>,
    &forward_entry<float>,
    &forward_entry<double>,
    &backward_entry<float>,
    &backward_entry<double>,
    &gemm_entry<float>,
    &gemm_entry<double>,
};
