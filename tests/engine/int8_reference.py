"""NumPy reference of the int8 scheme (csrc/int8_impl.h), operation for operation in float32.

Integer sums are exact and every float32 operation is repeated in the same order, so the
native kernels must match it bit for bit (on any ISA).
"""

from __future__ import annotations

import numpy as np

F = np.float32


def quantize_activation(x: np.ndarray) -> tuple[np.ndarray, F, int]:
    """``(q uint8 values as int64, scale, zero)`` of one float32 row."""
    lo, hi = F(min(F(0), x.min())), F(max(F(0), x.max()))
    scale = F((hi - lo) / F(255))
    if not scale > 0 or not np.isfinite(scale):
        scale = F(1)
    inv = F(F(1) / scale)
    zero = int(min(np.rint(F(-lo * inv)), F(255)))
    v = np.clip(x * inv, F(-255), F(255))
    q = np.clip(np.rint(v).astype(np.int64) + zero, 0, 255)
    return q, scale, zero


def quantize_weight(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(q (R, K) int64, scale (R,) float32)``: symmetric per row, as engine.quantized.pack."""
    scale = (np.abs(w).max(axis=1) / F(127)).astype(F)
    scale = np.where(scale > 0, scale, F(1)).astype(F)
    q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int64)
    return q, scale


def product(x: np.ndarray, wq: np.ndarray, ws: np.ndarray) -> np.ndarray:
    """``(M, R)`` float32: dequantised int8 product of every row of ``x (M, K)``."""
    rowsum = wq.sum(axis=1)
    out = np.empty((x.shape[0], wq.shape[0]), dtype=F)
    for m in range(x.shape[0]):
        q, scale, zero = quantize_activation(x[m])
        acc = wq @ q - zero * rowsum
        out[m] = acc.astype(F) * (scale * ws)
    return out


def tanh_r(x: np.ndarray) -> np.ndarray:
    """The kernels' rational tanh, in float32."""
    c = F(7.90531110763549805)
    v = np.where(x > c, c, x).astype(F)
    v = np.where(v < -c, -c, v).astype(F)
    v2 = v * v
    p = v2 * F(-2.76076847742355e-16) + F(2.00018790482477e-13)
    for coef in (-8.60467152213735e-11, 5.12229709037114e-08, 1.48572235717979e-05,
                 6.37261928875436e-04, 4.89352455891786e-03):
        p = p * v2 + F(coef)
    p = p * v
    q = v2 * F(1.19825839466702e-06) + F(1.18534705686654e-04)
    q = q * v2 + F(2.26843463243900e-03)
    q = q * v2 + F(4.89352518554385e-03)
    return np.where(np.abs(x) < F(0.0004), x, p / q).astype(F)


def sigmoid_r(x: np.ndarray) -> np.ndarray:
    return (F(0.5) * tanh_r(F(0.5) * x) + F(0.5)).astype(F)


def recurrence(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr=None, lengths=None,
               reverse=False):
    """``(y, h_n, c_n)`` of one layer-direction, as the int8 kernels compute it (float32)."""
    seq_len, batch, _ = x.shape
    hidden = w_hh.shape[0] // {"LSTM": 4, "GRU": 3}.get(mode, 1)
    iq, i_s = quantize_weight(w_ih)
    hq, h_s = quantize_weight(w_hh)
    rq, r_s = quantize_weight(w_hr) if w_hr is not None else (None, None)
    bias = np.zeros(w_ih.shape[0], F) if b_ih is None else b_ih + b_hh
    b_hn = None
    if mode == "GRU":
        b_hn = np.zeros(hidden, F) if b_ih is None else b_hh[2 * hidden:]
        if b_ih is not None:
            bias[2 * hidden:] = b_ih[2 * hidden:]
    xg = product(x.reshape(seq_len * batch, -1), iq, i_s) + bias
    xg = xg.reshape(seq_len, batch, -1).astype(F)
    h, c = h0.copy(), None if c0 is None else c0.copy()
    y = np.zeros((seq_len, batch, h0.shape[1]), F)
    H = hidden
    for s in range(seq_len):
        t = seq_len - 1 - s if reverse else s
        hg = product(h, hq, h_s)
        new_h = h.copy()
        for b in range(batch):
            if lengths is not None and t >= lengths[b]:
                continue
            xb, gb = xg[t, b], hg[b]
            if mode == "LSTM":
                i = sigmoid_r(xb[:H] + gb[:H])
                f = sigmoid_r(xb[H:2 * H] + gb[H:2 * H])
                g = tanh_r(xb[2 * H:3 * H] + gb[2 * H:3 * H])
                o = sigmoid_r(xb[3 * H:] + gb[3 * H:])
                c[b] = f * c[b] + i * g
                out = o * tanh_r(c[b])
                if rq is not None:
                    out = product(out[None], rq, r_s)[0]
            elif mode == "GRU":
                r = sigmoid_r(xb[:H] + gb[:H])
                z = sigmoid_r(xb[H:2 * H] + gb[H:2 * H])
                n = tanh_r(xb[2 * H:] + r * (gb[2 * H:] + b_hn))
                out = (F(1) - z) * n + z * h[b]
            else:
                pre = xb + gb
                out = np.where(pre < 0, F(0), pre) if mode == "RNN_RELU" else tanh_r(pre)
            new_h[b] = out
            y[t, b] = out
        h = new_h
    return y, h, c
