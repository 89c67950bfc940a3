"""The compiled choice kernel (numba): one market's month, buyers served one by one in a random order.

The law is that of :mod:`sim.model.market`: each buyer chooses by a nested logit among the
products it considers, can afford and finds open, or takes the outside option; buyers
are served in a uniformly random order and a product closes once it has taken its
order limit. The draws are made differently, so that a buyer costs about one ``exp``
per product and two uniforms, with no random number per product:

* **Choice by inverse CDF.** With ``W_ij = exp((V_ij - b_ik) / lambda_k)`` over the products
  buyer i may choose in nest k (``b_ik``: the best of them, so that nothing overflows and
  the inclusive value ``L_ik = b_ik + lambda_k log sum_{j in k} W_ij`` is exact however
  small lambda is), nest masses ``G_ik = exp(L_ik)`` and the outside option's ``exp(v0_i)``
  (all shifted by the largest), a uniform ``u1`` picks the outside option or a nest with
  probabilities ``G / sum G`` and a uniform ``u2`` a product of that nest with
  probabilities ``W_ij / sum W``: exactly the nested-logit probabilities (plain logit is
  one nest with lambda 1).
* **Service in order.** Pass 1 gives every buyer its first choice over the products open
  when the month starts. If no product is then asked for more than its limit, that is
  the result, whatever the order. Otherwise pass 2 walks the buyers who chose a product,
  in a uniformly random order: a buyer whose first choice is still open keeps it; a
  buyer whose first choice has closed draws again, with fresh uniforms ``u3, u4``, from
  the *residual* law ``R(j) = (P(j | open now) - P(j | open at start)) / P(closed | open
  at start)`` over what is open now and the outside option. Keeping the first choice when
  it is open and drawing from ``R`` otherwise gives exactly ``P(j | open now)``, the
  nested logit over what is open at the buyer's turn, which is one-by-one service. ``R``
  is never negative: closing a product of nest k lowers the denominator and, for
  lambda <= 1, raises ``G_k / S_k = S_k ** (lambda - 1)``, so every remaining option's
  probability rises. Buyers who took the outside option keep it, so pass 2 skips them.
  Draws again are computed in chunks of the next buyers (in the queue) who need one, under
  what is open at that point; the first product to close in the chunk's span ends it (the
  draws behind are discarded and made again), so each buyer sees what is open at its turn.
  Their inputs come from one 64-byte record per buyer kept in pass 1 (:func:`records_buffer`):
  these buyers come in a random order, and a record is one cache line to fetch.
* **Vectorised across buyers.** Buyers are taken in chunks of :data:`CHUNK`; within a
  chunk every loop runs over products outside and buyers inside, so the compiler turns
  it into vector instructions with no sums across lanes (and ``exp`` and ``log`` are
  written as polynomials for that reason: float32, within about 2 ulp).
* **Random numbers from a counter.** Each call takes one 64-bit ``key`` from the model's
  generator (the market's stream). Word ``c`` of the call is SplitMix64's output
  ``mix(key + (c + 1) * 0x9E3779B97F4A7C15)`` (Steele, Lea & Flood 2014), i.e. the
  ``c``-th output of a SplitMix64 stream seeded with ``key``. Buyer ``r`` (its position
  among the market's buyers) owns a fixed block of words (consideration of each brand,
  ``u1, u2``, ``u3, u4``, its deferral draw); the serving order is a Fisher-Yates shuffle
  on the words after all buyers' blocks. New buyers' attributes (:func:`draw_buyers`) come
  from their own key the same way. A buyer's draws do not depend on when it is
  served nor on what the others drew, so the result does not depend on the chunking, and
  a replicate re-runs bit for bit.

Arithmetic: utilities and ``W`` in float32, sums in float64, in a fixed order: no
fast-math reordering, so the results do not depend on the chunk or the CPU's vector width
(the polynomials and the utilities may use fused multiply-adds, on CPUs that have them).
Uniforms are ``(x + 0.5) / 2**32`` for a 32-bit half ``x`` of a word, never 0 or 1; a
Bernoulli(p) draw is ``x < round(p * 2**32)``. Budgets are compared with prices in float32.

The numpy path (:func:`sim.model.market.serve_in_order`, Gumbel-max with ``Exp(1)`` draws) is
kept as a fallback of the same law (``MarketModel(kernel="numpy")``; :mod:`sim.model.kernels` holds both
behind one interface).
Compiled code is cached on disk by numba (``cache=True``) after the first run.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numba as nb
import numpy as np
from numba.extending import overload
from numpy.typing import NDArray

#: Buyers handled together in the vectorised pass.
CHUNK = 128

#: Brands a buyer's consideration set can hold (one bit each).
MAX_BRANDS = 64


_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_LOW = np.uint64(0xFFFFFFFF)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_S27, _S30, _S31, _S32 = np.uint64(27), np.uint64(30), np.uint64(31), np.uint64(32)
_TWO32 = 4294967296.0

_jit = nb.njit(cache=True, nogil=True, error_model="numpy")
_inline = nb.njit(cache=True, nogil=True, error_model="numpy", inline="always")
# Fused multiply-add allowed (no other fast-math): a * b + c rounded once.
_jit_fma = nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})

# Flags passed as runtime booleans: a literal True or False would compile the callee once for each.
_FLAGS = np.array([False, True])


def records_buffer(n: int, n_tastes: int) -> NDArray[np.float32]:
    """Scratch rows for :func:`serve_market`: one row per buyer, in whole 64-byte lines.

    A row holds the buyer's tastes, alpha, budget (float32) and, in its last 8 bytes, the
    bits of the brands it considers.
    """
    width = 16 * -(-(n_tastes + 4) // 16)
    raw = np.empty(n * width + 16, np.float32)
    skip = (-raw.ctypes.data % 64) // 4
    return raw[skip : skip + n * width].reshape(n, width)


def new_key(rng: np.random.Generator) -> np.uint64:
    """One 64-bit key for a call of the kernel, drawn from the model's generator."""
    return np.uint64(rng.integers(0, 2**64, dtype=np.uint64))


def bernoulli_threshold(p: NDArray[np.float64] | float) -> NDArray[np.uint64]:
    """``round(p * 2**32)``, clipped to [0, 2**32]: a 32-bit draw ``x`` is a success iff ``x < threshold``."""
    return np.rint(np.clip(np.asarray(p, float), 0.0, 1.0) * _TWO32).astype(np.uint64)


def bernoulli_threshold_of(p: float) -> np.uint64:
    """:func:`bernoulli_threshold` of one probability."""
    return np.uint64(bernoulli_threshold(p).item())


def serve(
    v: NDArray[np.float32],
    available: NDArray[np.bool_],
    v0: NDArray[np.float32],
    nest: NDArray[np.intp],
    lam: NDArray[np.float32],
    limits: NDArray[np.float64],
    rng: np.random.Generator,
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """:func:`serve_matrix` with the arguments of :func:`sim.model.market.serve_in_order` and one key from ``rng``.

    Args:
        limits: orders each product may take (agents; ``inf`` = no limit).

    Returns:
        ``(choice, closed)``: product per buyer (-1 = outside option), products closed at the end.
    """
    n = v.shape[0]
    lim = np.floor(np.minimum(np.asarray(limits, float), n + 1.0)).astype(np.int64)
    lam64 = np.asarray(lam, np.float64)
    if not np.all((lam64 > 0) & (lam64 <= 1)):
        raise ValueError(f"nesting parameters must be in (0, 1], got {lam64.tolist()}")
    return serve_matrix(
        np.ascontiguousarray(v, np.float32),
        np.ascontiguousarray(available, np.bool_),
        np.ascontiguousarray(v0, np.float32),
        np.asarray(nest, np.int64),
        lam64,
        lim,
        new_key(rng),
        np.empty(0, np.int64),
        np.empty((0, 4)),
    )


# ------------------------------------------------------------------ random words


@_inline
def word(key: np.uint64, counter: np.uint64) -> np.uint64:
    """Word ``counter`` of the SplitMix64 stream seeded with ``key``."""
    z = key + (counter + _ONE) * _GAMMA
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@_inline
def _uniform_hi(x: np.uint64) -> float:
    return (float(x >> _S32) + 0.5) / _TWO32


@_inline
def _uniform_lo(x: np.uint64) -> float:
    return (float(x & _LOW) + 0.5) / _TWO32


@_inline
def _below(x: np.uint64, n: np.uint64) -> np.int64:
    """``floor(x * n / 2**64)`` for ``n < 2**32``: a uniform integer in ``[0, n)`` (bias below ``n / 2**64``)."""
    hi = x >> _S32
    lo = x & _LOW
    return np.int64((hi * n + ((lo * n) >> _S32)) >> _S32)


@_jit
def order_inside(first: NDArray[np.int64], order: NDArray[np.int64], key: np.uint64, base: np.uint64) -> NDArray[np.int64]:
    """The buyers who chose a product (``first >= 0``), in a uniformly random serving order.

    A uniformly random order of all buyers orders these uniformly at random, which a
    Fisher-Yates shuffle of their list (words ``base + i``) draws directly. A non-empty
    ``order`` (a permutation of all buyers, for tests) is used instead. Each entry packs
    the buyer ``r`` (low 31 bits) and its first choice (high 32 bits), so that walking the
    queue reads memory in order.
    """
    if order.shape[0] > 0:
        inside = order[first[order] >= 0]
    else:
        inside = np.flatnonzero(first >= 0)
        for i in range(inside.shape[0] - 1, 0, -1):
            j = _below(word(key, base + np.uint64(i)), np.uint64(i + 1))
            t = inside[i]
            inside[i] = inside[j]
            inside[j] = t
    for i in range(inside.shape[0]):
        inside[i] = (first[inside[i]] << 32) | inside[i]
    return inside


# ------------------------------------------------------------------ exp and log, vectorisable

# Cephes' expf and logf: range reduction and a polynomial, as plain arithmetic so that loops
# over buyers compile to vector instructions. exp takes arguments clamped to [-87, 80].
_F = np.float32
_LOG2E, _C1, _C2 = _F(1.44269504088896341), _F(0.693359375), _F(-2.12194440e-4)
_P0, _P1, _P2 = _F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3)
_P3, _P4, _P5 = _F(4.1665795894e-2), _F(1.6666665459e-1), _F(5.0000001201e-1)
_L0, _L1, _L2 = _F(7.0376836292e-2), _F(-1.1514610310e-1), _F(1.1676998740e-1)
_L3, _L4, _L5 = _F(-1.2420140846e-1), _F(1.4249322787e-1), _F(-1.6668057665e-1)
_L6, _L7, _L8 = _F(2.0000714765e-1), _F(-2.4999993993e-1), _F(3.3333331174e-1)
_SQRTHF = _F(0.707106781186547524)
_ARG_LO, _ARG_HI, _HALF, _ONE_F, _ZERO_F = _F(-87.0), _F(80.0), _F(0.5), _F(1.0), _F(0.0)
_BIAS, _MANTISSA = _F(127.0), _F(2.0**23)


@_jit_fma
def _exp_row(x: NDArray[np.float32], out: NDArray[np.float32], bits: NDArray[np.int32], c: int) -> None:
    """``out[r] = exp(x[r])`` for ``r < c`` (``out`` must not be ``x``, or the loop is not vectorised)."""
    for r in range(c):
        a = min(max(x[r], _ARG_LO), _ARG_HI)
        fx = np.floor(a * _LOG2E + _HALF)
        z = a - fx * _C1
        z = z - fx * _C2
        p = ((((_P0 * z + _P1) * z + _P2) * z + _P3) * z + _P4) * z + _P5
        out[r] = p * (z * z) + z + _ONE_F
        bits[r] = np.int32((fx + _BIAS) * _MANTISSA)  # the bits of 2 ** fx, exact in float32
    scale = bits.view(np.float32)
    for r in range(c):
        out[r] = out[r] * scale[r]


@_jit_fma
def _log_row(x: NDArray[np.float32], out: NDArray[np.float32], bits: NDArray[np.int32], c: int) -> None:
    """``out[r] = log(x[r])`` for ``r < c`` and normal ``x[r] > 0`` (``out`` may not be ``x``)."""
    xb = x.view(np.int32)
    for r in range(c):
        b = xb[r]
        out[r] = _F(((b >> 23) & 0xFF) - 126)  # exponent e, with x = mantissa * 2**e, mantissa in [0.5, 1)
        bits[r] = (b & 0x807FFFFF) | 0x3F000000
    mant = bits.view(np.float32)
    for r in range(c):
        m = mant[r]
        e = out[r]
        small = m < _SQRTHF
        e = e - _ONE_F if small else e
        m = (m + m - _ONE_F) if small else (m - _ONE_F)
        z = m * m
        y = (((((((_L0 * m + _L1) * m + _L2) * m + _L3) * m + _L4) * m + _L5) * m + _L6) * m + _L7) * m + _L8
        y = y * m * z + _C2 * e - _HALF * z
        out[r] = (m + y) + _C1 * e


# ------------------------------------------------------------------ choices of a chunk of buyers


class Workspace(NamedTuple):
    """Scratch arrays of :func:`choose_chunk` and of the fills, for a chunk of buyers (the last axis of each).

    Arrays of one type and shape are the rows of one block (named below): a call then passes 13
    arrays, each of them reference-counted, where one per row would be 30.

    Attributes:
        V: utilities, then the choice weights ``W``, products x buyers (float32).
        M: rows ``M`` (whether each buyer may choose each product now) and ``M0`` (could choose
            at the start, for draws again), 2 x products x buyers.
        f32: rows ``mx`` (the largest log-mass), ``x``, ``y`` (scratch), ``v0`` (the outside
            option's utility), ``cap`` (the most the buyer can pay, RMB).
        f64: rows ``o`` (the outside option's mass), ``t`` (the draw's threshold), ``acc`` (a
            running sum), ``u1``, ``u2`` (the buyer's two uniforms).
        i64: rows ``kk`` (the nest chosen), ``pos`` (the product chosen; -1: the outside option),
            ``found`` (the outside option was drawn).
        bits: int32 scratch of the exp and log rows.
        seen: bits of the brands the buyer considers.
        nests: rows ``s`` (sum of each nest's weights now), ``g`` (its mass now), ``g0`` (its mass
            at the start), ``s0`` (its sum at the start), ``f`` (its scale from now to the start),
            ``lin`` (its inclusive value); each nests x buyers, float64.
        XT: the buyers' coefficients (tastes, then alpha), then the budget, RMB (float32, rows x buyers).
        E: exps of the block ``V`` (products x buyers). E_bits: their int32 scratch.
        cb: whether the buyer considers each brand (:data:`MAX_BRANDS` x buyers).
        best: rows ``mk``, ``mk0``: the best utility per nest now and at the start (float32, nests x buyers).
    """

    V: NDArray[np.float32]
    M: NDArray[np.bool_]
    f32: NDArray[np.float32]
    f64: NDArray[np.float64]
    i64: NDArray[np.int64]
    bits: NDArray[np.int32]
    seen: NDArray[np.uint64]
    nests: NDArray[np.float64]
    XT: NDArray[np.float32]
    E: NDArray[np.float32]
    E_bits: NDArray[np.int32]
    cb: NDArray[np.bool_]
    best: NDArray[np.float32]


@_jit
def workspace(n_products: int, n_nests: int, n_coefs: int, chunk: int) -> Workspace:
    """A :class:`Workspace` for ``chunk`` buyers, ``n_products`` products, ``n_nests`` nests and ``n_coefs`` rows of ``XT``."""
    return Workspace(
        np.zeros((n_products, chunk), np.float32),
        np.zeros((2, n_products, chunk), np.bool_),
        np.zeros((5, chunk), np.float32),
        np.zeros((5, chunk), np.float64),
        np.zeros((3, chunk), np.int64),
        np.zeros(chunk, np.int32),
        np.zeros(chunk, np.uint64),
        np.zeros((6, n_nests, chunk), np.float64),
        np.zeros((n_coefs, chunk), np.float32),
        np.zeros((n_products, chunk), np.float32),
        np.zeros(n_products * chunk, np.int32),
        np.zeros((MAX_BRANDS, chunk), np.bool_),
        np.zeros((2, n_nests, chunk), np.float32),
    )


@_jit
def choose_chunk(
    c: int,
    nest: NDArray[np.int64],
    lam: NDArray[np.float64],
    inv_lam: NDArray[np.float32],
    residual: bool,
    closed: NDArray[np.int64],
    ws: Workspace,
) -> None:
    """Choices of ``c`` buyers from the workspace ``ws``; the product (or -1) is left in row ``pos`` of ``ws.i64``.

    Reads ``V`` (products x buyers utilities, overwritten by the weights), ``M`` (may choose),
    ``v0`` and the uniforms ``u1, u2``. With ``residual``, ``M0`` holds what each buyer could
    choose at the start, ``M`` is a subset, ``closed`` lists the products closed since the
    start, and the draw is from the residual law (module docstring), ``u1, u2`` standing for
    ``u3, u4``.

    Each nest's weights are taken relative to its best product, ``W_j = exp((V_j - m_k) /
    lambda_k)``, so that the inclusive value ``L_k = m_k + lambda_k log S_k`` is exact however
    small lambda is (``S_k`` is at least 1); the masses are then ``exp(L_k - m)`` and
    ``exp(v0 - m)`` with ``m`` the largest of them. Loops are written in the forms the compiler
    vectorises (``max`` under a mask, sums of masked values, counts).
    """
    V, M, M0, E, bits = ws.V, ws.M[0], ws.M[1], ws.E, ws.bits
    mx, x, y, v0 = ws.f32[0], ws.f32[1], ws.f32[2], ws.f32[3]
    o, t, acc, u1, u2 = ws.f64[0], ws.f64[1], ws.f64[2], ws.f64[3], ws.f64[4]
    kk, pos, found = ws.i64[0], ws.i64[1], ws.i64[2]
    s, g, g0, s0, f, lin = ws.nests[0], ws.nests[1], ws.nests[2], ws.nests[3], ws.nests[4], ws.nests[5]
    mk, mk0 = ws.best[0], ws.best[1]
    n_products = nest.shape[0]
    n_nests = lam.shape[0]
    lowest = _F(-np.inf)
    # Best utility per nest over what the buyer may choose (now, and at the start).
    for k in range(n_nests):
        for r in range(c):
            mk[k, r] = lowest
            mk0[k, r] = lowest
            s[k, r] = 0.0
            s0[k, r] = 0.0
    for j in range(n_products):
        k = nest[j]
        for r in range(c):
            mk[k, r] = max(mk[k, r], V[j, r]) if M[j, r] else mk[k, r]
        if residual:
            for r in range(c):
                mk0[k, r] = max(mk0[k, r], V[j, r]) if M0[j, r] else mk0[k, r]
    if residual:
        # Weights of the products closed since the start, relative to the best at the start (before V changes).
        for h in range(closed.shape[0]):
            j = closed[h]
            k = nest[j]
            il = inv_lam[j]
            for r in range(c):
                x[r] = (V[j, r] - mk0[k, r]) * il if M0[j, r] & ~M[j, r] else _ARG_LO
            _exp_row(x, y, bits, c)
            for r in range(c):
                s0[k, r] += float(y[r]) if M0[j, r] & ~M[j, r] else 0.0
    # Weights W relative to each nest's best (0 where the buyer may not choose); one exp call for the block
    # (columns past c are scratch: finite, unused).
    for j in range(n_products):
        k = nest[j]
        il = inv_lam[j]
        for r in range(c):
            V[j, r] = (V[j, r] - mk[k, r]) * il if M[j, r] else _ARG_LO
    _exp_row(V.reshape(-1), E.reshape(-1), ws.E_bits, n_products * V.shape[1])
    for j in range(n_products):
        k = nest[j]
        for r in range(c):
            w = E[j, r] if M[j, r] else _ZERO_F
            V[j, r] = w
            s[k, r] += float(w)
    # Inclusive values: L = m_k + lambda_k log S_k now (lin); at the start (residual), S0 = f S + closed part.
    for k in range(n_nests):
        lk = lam[k]
        for r in range(c):
            x[r] = _F(s[k, r]) if s[k, r] > 0.0 else _ONE_F
        _log_row(x, y, bits, c)
        for r in range(c):
            lin[k, r] = float(mk[k, r]) + lk * float(y[r]) if s[k, r] > 0.0 else -np.inf
        if residual:
            ilk = _F(1.0 / lk)
            for r in range(c):
                x[r] = (mk[k, r] - mk0[k, r]) * ilk if s[k, r] > 0.0 else _ARG_LO
            _exp_row(x, y, bits, c)
            for r in range(c):
                f[k, r] = float(y[r]) if s[k, r] > 0.0 else 0.0
                s0[k, r] += f[k, r] * s[k, r]
                x[r] = _F(s0[k, r]) if s0[k, r] > 0.0 else _ONE_F
            _log_row(x, y, bits, c)
            for r in range(c):
                # g0 holds L0 until the masses below.
                g0[k, r] = float(mk0[k, r]) + lk * float(y[r]) if s0[k, r] > 0.0 else -np.inf
    # Masses relative to the largest m of v0 and the L's (L0 >= L at the start): o = exp(v0 - m), g = exp(L - m).
    for r in range(c):
        mx[r] = v0[r]
    for k in range(n_nests):
        top = g0 if residual else lin
        for r in range(c):
            mx[r] = max(mx[r], _F(top[k, r]))
    for r in range(c):
        x[r] = v0[r] - mx[r]
    _exp_row(x, y, bits, c)
    for r in range(c):
        o[r] = float(y[r])
        t[r] = o[r]
        acc[r] = o[r]
    for k in range(n_nests):
        for r in range(c):
            x[r] = _F(lin[k, r] - float(mx[r])) if s[k, r] > 0.0 else _ARG_LO
        _exp_row(x, y, bits, c)
        for r in range(c):
            g[k, r] = float(y[r]) if s[k, r] > 0.0 else 0.0
            t[r] += g[k, r]
        if residual:
            for r in range(c):
                x[r] = _F(g0[k, r] - float(mx[r])) if s0[k, r] > 0.0 else _ARG_LO
            _exp_row(x, y, bits, c)
            for r in range(c):
                g0[k, r] = float(y[r]) if s0[k, r] > 0.0 else 0.0
                acc[r] += g0[k, r]
    if residual:
        # t = D now, acc = D0 at the start. The residual gives the outside option o / D - o / D0 and nest k
        # G_k / D - G0_k / D0 * (f_k S_k / S0_k), the first-choice mass on its products still open.
        for k in range(n_nests):
            for r in range(c):
                was = g0[k, r] / acc[r] * (f[k, r] * s[k, r] / s0[k, r]) if s0[k, r] > 0.0 else 0.0
                g[k, r] = max(g[k, r] / t[r] - was, 0.0) if s[k, r] > 0.0 else 0.0
        for r in range(c):
            o[r] = max(o[r] / t[r] - o[r] / acc[r], 0.0)
            t[r] = o[r]
        for k in range(n_nests):
            for r in range(c):
                t[r] += g[k, r]
    # The outside option, or the nest where the running sum of masses passes u1 * t.
    for r in range(c):
        found[r] = (u1[r] * t[r] < o[r]) | ~(t[r] > 0.0)
        t[r] = u1[r] * t[r]
        acc[r] = o[r]
        kk[r] = 0
    for k in range(n_nests - 1):
        for r in range(c):
            acc[r] += g[k, r]
            kk[r] += acc[r] <= t[r]
    for r in range(c):
        if not g[kk[r], r] > 0.0:  # rounding: the last nest with a mass
            k = n_nests - 1
            while k > 0 and not g[k, r] > 0.0:
                k -= 1
            kk[r] = k
        t[r] = u2[r] * s[kk[r], r]
        acc[r] = 0.0
        pos[r] = 0
    # The product: the number of products before the running sum of the nest's weights passes t.
    if n_nests == 1:
        for j in range(n_products):
            for r in range(c):
                acc[r] += float(V[j, r])
                pos[r] += acc[r] <= t[r]
    else:
        for j in range(n_products):
            k = nest[j]
            for r in range(c):
                acc[r] += float(V[j, r]) if kk[r] == k else 0.0
                pos[r] += acc[r] <= t[r]
    for r in range(c):
        if found[r]:
            pos[r] = -1
        elif pos[r] >= n_products or not (V[pos[r], r] > _ZERO_F and nest[pos[r]] == kk[r]):
            # Rounding left t at or beyond the sum: the nest's last product with a weight.
            j = n_products - 1
            while j > 0 and not (V[j, r] > _ZERO_F and nest[j] == kk[r]):
                j -= 1
            pos[r] = j


# ------------------------------------------------------------------ buyers into the workspace


class MatrixBuyers(NamedTuple):
    """Buyers given by a matrix of utilities (:func:`serve_matrix`, :func:`choose_rows`).

    Attributes:
        v: utilities, buyers x products (float32).
        available: whether each buyer may choose each product (considered, affordable).
        v0: the outside option's utility per buyer (float32).
        key: the call's key: buyer ``r``'s ``u1, u2`` come from word ``2r``, its ``u3, u4`` from word ``2r + 1``.
        uniforms: fixed draws instead of the key's (tests), buyers x ``(u1, u2, u3, u4)``; 0 rows: none.
    """

    v: NDArray[np.float32]
    available: NDArray[np.bool_]
    v0: NDArray[np.float32]
    key: np.uint64
    uniforms: NDArray[np.float64]


class MarketBuyers(NamedTuple):
    """One market's buyers, as the pool's columns, and what is offered to them (:func:`serve_market`).

    Attributes:
        rows: the market's buyers (rows of the pool's columns); buyer ``r`` is ``rows[r]``.
        taste, alpha, budget, tier: the pool's columns (all rows).
        attrs: the products' attributes, (tastes + 1) x products (float32).
        delta: mean utility of each product (float32). paid: price paid, RMB. brand: brand of each product.
        thresholds: Bernoulli thresholds of considering each brand, city tiers x (brands rounded up to even).
        budget_factor: a buyer can afford ``paid <= budget * budget_factor``.
        v0_base, v0_alpha: the outside option's utility is ``v0_base + v0_alpha * alpha``.
        key: the call's key. slots: words per buyer. pairs: words of brand draws per buyer.
        records: one row per buyer, kept in pass 1 for those who may draw again (:func:`records_buffer`).
    """

    rows: NDArray[np.int64]
    taste: NDArray[np.float32]
    alpha: NDArray[np.float32]
    budget: NDArray[np.float32]
    tier: NDArray[np.int16]
    attrs: NDArray[np.float32]
    delta: NDArray[np.float32]
    paid: NDArray[np.float64]
    brand: NDArray[np.int64]
    thresholds: NDArray[np.uint64]
    budget_factor: float
    v0_base: float
    v0_alpha: float
    key: np.uint64
    slots: int
    pairs: int
    records: NDArray[np.float32]


@_jit
def _fill_matrix(
    which: NDArray[np.int64], c: int, b: MatrixBuyers, is_open: NDArray[np.bool_], again: bool, ws: Workspace
) -> None:
    """Buyers ``which[:c]`` into the workspace: ``V``, ``M`` (over ``is_open``), ``v0`` and their uniforms.

    The first draw's uniforms come from word ``2r`` (or columns 0-1 of ``uniforms``), a draw
    ``again``'s from word ``2r + 1`` (or columns 2-3).
    """
    V, M = ws.V, ws.M[0]
    v0c, u1, u2 = ws.f32[3], ws.f64[3], ws.f64[4]
    v, available, v0, uniforms = b.v, b.available, b.v0, b.uniforms
    fixed = uniforms.shape[0] > 0
    for q in range(c):
        r = which[q]
        for j in range(v.shape[1]):
            V[j, q] = v[r, j]
            M[j, q] = available[r, j] & is_open[j]
        v0c[q] = v0[r]
        if fixed:
            u1[q], u2[q] = uniforms[r, 2 * again], uniforms[r, 2 * again + 1]
        else:
            x = word(b.key, np.uint64(2 * r + again))
            u1[q], u2[q] = _uniform_hi(x), _uniform_lo(x)


@_jit_fma
def _fill_market(
    which: NDArray[np.int64], c: int, b: MarketBuyers, is_open: NDArray[np.bool_], again: bool, ws: Workspace
) -> None:
    """The market's buyers ``which[:c]`` into the workspace: consideration, utilities, ``M``, ``v0``, uniforms.

    Utilities ``V_j = delta_j + sum_k attrs[k, j] * beta_k`` with the coefficients ``beta``
    (the tastes, then ``alpha``) added in that order, the same for any chunk. A draw ``again``
    takes ``u3, u4`` (the word after ``u1, u2``) and reads the buyers' inputs from ``records``
    (kept by :func:`_keep_records`) instead of the pool's columns: draws again come in a random
    order, and a record is one cache line to fetch where the pool's columns are five.
    """
    V, M = ws.V, ws.M[0]
    v0c, cap, u1, u2 = ws.f32[3], ws.f32[4], ws.f64[3], ws.f64[4]
    seen, XT, cb = ws.seen, ws.XT, ws.cb
    rows, taste, alpha, budget, tier, records = b.rows, b.taste, b.alpha, b.budget, b.tier, b.records
    at, delta, paid, brand, thresholds, key = b.attrs, b.delta, b.paid, b.brand, b.thresholds, b.key
    budget_factor, v0_base, v0_alpha = b.budget_factor, b.v0_base, b.v0_alpha
    n_brands = thresholds.shape[1]
    n_tastes = taste.shape[1]
    n_coefs = n_tastes + 1
    pairs = thresholds.shape[1] // 2
    uniform_slot = pairs + 1 if again else pairs
    seen_rec = records.view(np.uint64)
    seen_col = seen_rec.shape[1] - 1
    if again:
        # Touch the rows first: the loads of a tight loop overlap, those of the fill would not.
        touch = _ZERO_F
        for q in range(c):
            touch += records[which[q], 0]
        ws.f32[1, 0] = touch
    for q in range(c):
        r = which[q]
        base = np.uint64(r * b.slots)
        if again:
            for k in range(n_coefs + 1):
                XT[k, q] = records[r, k]
            bits = seen_rec[r, seen_col]
            seen[q] = bits
            for h in range(n_brands):
                cb[h, q] = ((bits >> np.uint64(h)) & _ONE) != _ZERO
        else:
            i = rows[r]
            for k in range(n_tastes):
                XT[k, q] = taste[i, k]
            XT[n_tastes, q] = alpha[i]
            XT[n_coefs, q] = budget[i]
            # Brand h is considered iff bit h is set; brands 2h and 2h + 1 use the two halves of word h.
            thr = thresholds[tier[i]]
            bits = _ZERO
            for h in range(pairs):
                x = word(key, base + np.uint64(h))
                c0 = (x >> _S32) < thr[2 * h]
                c1 = (x & _LOW) < thr[2 * h + 1]
                cb[2 * h, q] = c0
                cb[2 * h + 1, q] = c1
                bits |= (np.uint64(c0) << np.uint64(2 * h)) | (np.uint64(c1) << np.uint64(2 * h + 1))
            seen[q] = bits
        cap[q] = _F(float(XT[n_coefs, q]) * budget_factor)
        v0c[q] = _F(v0_base + v0_alpha * float(XT[n_tastes, q]))
        x = word(key, base + np.uint64(uniform_slot))
        u1[q], u2[q] = _uniform_hi(x), _uniform_lo(x)
    for j in range(paid.shape[0]):
        d = delta[j]
        for q in range(c):
            V[j, q] = d
        k = 0
        while k + 4 <= n_coefs:
            a0, a1, a2, a3 = at[k, j], at[k + 1, j], at[k + 2, j], at[k + 3, j]
            for q in range(c):
                V[j, q] = (((V[j, q] + a0 * XT[k, q]) + a1 * XT[k + 1, q]) + a2 * XT[k + 2, q]) + a3 * XT[k + 3, q]
            k += 4
        while k < n_coefs:
            a0 = at[k, j]
            for q in range(c):
                V[j, q] = V[j, q] + a0 * XT[k, q]
            k += 1
        considers = cb[brand[j]]
        p = _F(paid[j])
        if is_open[j]:
            for q in range(c):
                M[j, q] = considers[q] & (p <= cap[q])
        else:
            for q in range(c):
                M[j, q] = False


@_jit
def _keep_records(which: NDArray[np.int64], c: int, b: MarketBuyers, ws: Workspace) -> None:
    """Keep, in ``records[r]``, the inputs of the buyers of the chunk who chose a product (those who may draw again).

    One 64-byte row per buyer: tastes, alpha, budget (float32), then in the last 8 bytes the
    bits of the brands it considers.
    """
    records = b.records
    pos, seen, XT = ws.i64[1], ws.seen, ws.XT
    seen_rec = records.view(np.uint64)
    seen_col = seen_rec.shape[1] - 1
    for q in range(c):
        if pos[q] >= 0:
            r = which[q]
            for k in range(XT.shape[0]):
                records[r, k] = XT[k, q]
            seen_rec[r, seen_col] = seen[q]


# One pass 2 (and one draw again) serves both kinds of buyers: _fill below is resolved by the
# buyers' type when numba compiles the caller (a direct call, and the caller's cache keeps working,
# which a jitted function passed as an argument would break).


def _fill(which: NDArray[np.int64], c: int, buyers: Any, is_open: NDArray[np.bool_], again: bool, ws: Workspace) -> None:
    """Buyers ``which[:c]`` into the workspace (:func:`_fill_matrix` or :func:`_fill_market`); compiled code only."""
    raise NotImplementedError("called from compiled code only")


def _is(buyers: Any, kind: type) -> bool:
    return isinstance(buyers, nb.core.types.BaseNamedTuple) and buyers.instance_class is kind  # type: ignore[attr-defined]


@overload(_fill, jit_options={"nogil": True, "error_model": "numpy"}, inline="always")
def _fill_typed(which, c, buyers, is_open, again, ws):  # type: ignore[no-untyped-def]  # numba matches the names, unannotated
    if _is(buyers, MatrixBuyers):
        return lambda which, c, buyers, is_open, again, ws: _fill_matrix(which, c, buyers, is_open, again, ws)
    if _is(buyers, MarketBuyers):
        return lambda which, c, buyers, is_open, again, ws: _fill_market(which, c, buyers, is_open, again, ws)
    return None


# ------------------------------------------------------------------ the passes


class Setup(NamedTuple):
    """What every kernel call sets up once: the nests and the scratch (:func:`_setup`).

    Attributes:
        nest: the nest of each product. lam: the nesting parameter of each nest (<= 1).
        inv_lam: ``1 / lambda`` of each product's nest (float32).
        ws: the :class:`Workspace` of a chunk of buyers. which: the chunk's buyers.
    """

    nest: NDArray[np.int64]
    lam: NDArray[np.float64]
    inv_lam: NDArray[np.float32]
    ws: Workspace
    which: NDArray[np.int64]


@_jit
def _setup(nest: NDArray[np.int64], lam: NDArray[np.float64], n_coefs: int) -> Setup:
    """The :class:`Setup` of a call on ``nest.shape[0]`` products, with ``n_coefs`` rows of coefficients."""
    n_products = nest.shape[0]
    inv_lam = np.empty(n_products, np.float32)
    for j in range(n_products):
        inv_lam[j] = _F(1.0 / lam[nest[j]])
    return Setup(nest, lam, inv_lam, workspace(n_products, lam.shape[0], n_coefs, CHUNK), np.empty(CHUNK, np.int64))


@_jit
def _first_choices(
    buyers: MatrixBuyers, open0: NDArray[np.bool_], setup: Setup, first: NDArray[np.int64], demand: NDArray[np.int64]
) -> None:
    """Pass 1 of the matrix kernels, in order, a chunk at a time: each buyer's first choice over what
    is open at the start (:func:`serve_market` writes the same loop out, keeping records).

    Writes ``first``, the product each buyer chose (-1 = outside option), and adds to ``demand`` how
    many chose each product (arrays the caller allocates: measured faster than returning them).
    """
    # Fields are read once, outside the loops (each read of a field is a reference count).
    ws, which, pos = setup.ws, setup.which, setup.ws.i64[1]
    no = _FLAGS[0]
    none = np.empty(0, np.int64)
    n = first.shape[0]
    for r0 in range(0, n, CHUNK):
        c = min(CHUNK, n - r0)
        for q in range(c):
            which[q] = r0 + q
        _fill_matrix(which, c, buyers, open0, no, ws)
        choose_chunk(c, setup.nest, setup.lam, setup.inv_lam, no, none, ws)
        for q in range(c):
            first[r0 + q] = pos[q]
            if pos[q] >= 0:
                demand[pos[q]] += 1


@_jit
def _draw_again(c: int, buyers: Any, open0: NDArray[np.bool_], is_open: NDArray[np.bool_], setup: Setup) -> None:
    """The buyers ``setup.which[:c]``, whose first choice has closed, draw from the residual law over
    what ``is_open`` (into row ``pos`` of ``setup.ws.i64``)."""
    ws = setup.ws
    _fill(setup.which, c, buyers, open0, _FLAGS[1], ws)
    M, M0 = ws.M[0], ws.M[1]
    for j in range(open0.shape[0]):
        for k in range(c):
            M0[j, k] = M[j, k]
            M[j, k] = M0[j, k] & is_open[j]
    choose_chunk(c, setup.nest, setup.lam, setup.inv_lam, _FLAGS[1], np.flatnonzero(open0 & ~is_open), ws)


# Pass 2. Buyers who meet a closed product draw again in chunks. From the current position in the
# queue, the next buyers (up to a chunk) whose first choice is closed are drawn together under the
# products open now (_collect, then _draw_again), then the queue is applied in order (_apply); the
# first product that closes ends the segment, and the buyers after it are taken again from there
# (their draws discarded), so that each buyer sees exactly what is open at its turn.


@_jit
def _serve_queue(
    buyers: Any,
    first: NDArray[np.int64],
    limits: NDArray[np.int64],
    open0: NDArray[np.bool_],
    base: np.uint64,
    order: NDArray[np.int64],
    setup: Setup,
) -> NDArray[np.bool_]:
    """Pass 2: who chose a product is served in a random order (words from ``base``, or ``order``);
    who finds its first choice closed draws again. Updates ``first``; returns what is open at the end."""
    queue = order_inside(first, order, buyers.key, base)
    remaining = limits.copy()
    is_open = open0.copy()
    drawn = np.empty(CHUNK, np.int64)
    which, pos = setup.which, setup.ws.i64[1]
    q = 0
    while q < queue.shape[0]:
        e, c = _collect(queue, is_open, q, which)
        if c > 0:
            _draw_again(c, buyers, open0, is_open, setup)
            for k in range(c):
                drawn[k] = pos[k]
        q = _apply(queue, remaining, is_open, q, e, drawn)
    _settle(queue, first)
    return is_open


@_jit
def _collect(queue: NDArray[np.int64], is_open: NDArray[np.bool_], q: int, redo: NDArray[np.int64]) -> tuple[int, int]:
    """From position ``q``: the next buyers whose first choice is closed, into ``redo``; returns (end, how many)."""
    n_redo = 0
    e = q
    while e < queue.shape[0] and n_redo < redo.shape[0]:
        if not is_open[queue[e] >> 32]:
            redo[n_redo] = queue[e] & 0x7FFFFFFF
            n_redo += 1
        e += 1
    return e, n_redo


@_jit
def _apply(
    queue: NDArray[np.int64],
    remaining: NDArray[np.int64],
    is_open: NDArray[np.bool_],
    q: int,
    e: int,
    drawn: NDArray[np.int64],
) -> int:
    """Serve positions ``q .. e - 1`` in order (``drawn``: the new draws of those whose first choice is closed).

    Returns:
        Where to go on from: ``e``, or the position after the first buyer who closed a product.
    """
    k = 0
    for p in range(q, e):
        ch = queue[p] >> 32
        if not is_open[ch]:
            ch = drawn[k]
            k += 1
            # The new choice goes into the entry (written in order), marked by bit 31, for _settle.
            queue[p] = (ch << 32) | (queue[p] & 0x7FFFFFFF) | 0x80000000
        if ch >= 0:
            remaining[ch] -= 1
            if remaining[ch] <= 0:
                is_open[ch] = False
                return p + 1
    return e


@_jit
def _settle(queue: NDArray[np.int64], first: NDArray[np.int64]) -> None:
    """The choices drawn again, from the queue's marked entries into ``first``."""
    for p in range(queue.shape[0]):
        x = queue[p]
        if x & 0x80000000:
            first[x & 0x7FFFFFFF] = x >> 32


# ------------------------------------------------------------------ the kernels


@_jit
def serve_matrix(
    v: NDArray[np.float32],
    available: NDArray[np.bool_],
    v0: NDArray[np.float32],
    nest: NDArray[np.int64],
    lam: NDArray[np.float64],
    limits: NDArray[np.int64],
    key: np.uint64,
    order: NDArray[np.int64],
    uniforms: NDArray[np.float64],
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Buyers x products utilities served one by one under order limits (for ``sim bench`` and tests).

    Draws from ``key``: buyer ``r``'s ``u1, u2`` from word ``2r``, ``u3, u4`` from word
    ``2r + 1``, the serving order from the words from ``2n`` on. For tests on fixed draws,
    a non-empty ``order`` (a permutation of the buyers) and ``uniforms`` (buyers x 4:
    ``u1, u2, u3, u4``) replace them.

    Returns:
        ``(choice, closed)``: product per buyer (-1 = outside option) and the products closed
        at the end (limit reached, or no room from the start).
    """
    n = v.shape[0]
    buyers = MatrixBuyers(v, available, v0, key, uniforms)
    setup = _setup(nest, lam, 1)
    open0 = limits > 0
    first, demand = np.empty(n, np.int64), np.zeros(limits.shape[0], np.int64)
    _first_choices(buyers, open0, setup, first, demand)
    if not np.any(demand > limits):
        return first, ~open0 | (demand >= limits)
    is_open = _serve_queue(buyers, first, limits, open0, np.uint64(2 * n), order, setup)
    return first, ~is_open


@_jit
def choose_rows(
    v: NDArray[np.float32],
    available: NDArray[np.bool_],
    v0: NDArray[np.float32],
    nest: NDArray[np.int64],
    lam: NDArray[np.float64],
    open_start: NDArray[np.bool_],
    open_now: NDArray[np.bool_],
    uniforms: NDArray[np.float64],
) -> NDArray[np.int64]:
    """Each buyer's choice at its turn, given what was open at the start and what is open now (tests).

    The rule of :func:`serve_matrix` for one buyer: the first choice over ``available &
    open_start`` with ``uniforms[:, :2]``; if that product is not in ``open_now``, a draw
    from the residual law with ``uniforms[:, 2:]``. Serving buyers one by one with this rule,
    ``open_now`` being what is open at each one's turn, is the definition that
    :func:`serve_matrix` implements in passes.
    """
    buyers = MatrixBuyers(v, available, v0, np.uint64(0), uniforms)
    setup = _setup(nest, lam, 1)
    choice, demand = np.empty(v.shape[0], np.int64), np.zeros(open_start.shape[0], np.int64)
    _first_choices(buyers, open_start, setup, choice, demand)
    for r in range(v.shape[0]):
        if choice[r] >= 0 and not open_now[choice[r]]:
            setup.which[0] = r
            _draw_again(1, buyers, open_start, open_now, setup)
            choice[r] = setup.ws.i64[1, 0]
    return choice


@_jit
def serve_market(
    rows: NDArray[np.int64],
    taste: NDArray[np.float32],
    alpha: NDArray[np.float32],
    budget: NDArray[np.float32],
    tier: NDArray[np.int16],
    may_defer: NDArray[np.bool_],
    attrs: NDArray[np.float32],
    delta: NDArray[np.float32],
    paid: NDArray[np.float64],
    brand: NDArray[np.int64],
    nest: NDArray[np.int64],
    lam: NDArray[np.float64],
    consider: NDArray[np.uint64],
    budget_factor: float,
    v0_base: float,
    v0_alpha: float,
    defer: np.uint64,
    limits: NDArray[np.int64],
    product_id: NDArray[np.int64],
    key: np.uint64,
    choice: NDArray[np.int32],
    stays: NDArray[np.bool_],
    records: NDArray[np.float32],
) -> NDArray[np.int64]:
    """One market's month, fused: consideration, utilities, choice, service in order, deferral.

    Args:
        rows: the market's buyers (rows of the pool arrays); buyer ``r`` is ``rows[r]``.
        taste, alpha, budget, tier, may_defer: the pool's columns (all rows); ``may_defer``:
            the buyer may still defer (months in the market below the maximum).
        attrs: the products' attributes, (tastes + 1) x products, float32: one row per taste,
            then minus the paid price in 100k RMB (the coefficient of ``alpha``).
        delta: mean utility of each product (appeal, wait, ageing...), float32.
        paid: price paid (RMB); a buyer can afford ``paid <= budget * budget_factor``.
        brand: brand of each product (< :data:`MAX_BRANDS`); nest: its nest; lam: nesting
            parameter per nest (<= 1).
        consider: Bernoulli thresholds (:func:`bernoulli_threshold`) of considering each brand,
            city tiers x brands.
        v0_base, v0_alpha: the outside option's utility is ``v0_base + v0_alpha * alpha``.
        defer: Bernoulli threshold of staying (deferring) after the outside option.
        limits: orders each product may take (agents).
        product_id: what to write in ``choice`` for each product.
        key: this call's key (:func:`new_key`).
        choice, stays: outputs, written at ``rows``: ``product_id`` of the product ordered
            (-1 = outside option) and whether the buyer stays in the market.
        records: scratch rows, one per buyer at least (:func:`records_buffer`).

    Returns:
        Orders taken per product (agents).

    Words of buyer ``r``: ``r * slots + h`` for brands ``2h, 2h + 1``, then ``u1, u2``,
    ``u3, u4`` and the deferral draw; the serving order uses the words from ``n * slots`` on.
    """
    n = rows.shape[0]
    n_products = paid.shape[0]
    if records.shape[0] < n or records.shape[1] < taste.shape[1] + 4 or records.shape[1] % 2:
        raise ValueError("records: too small for the buyers (see records_buffer)")
    if consider.shape[1] > MAX_BRANDS:
        raise ValueError("consider: more brands than MAX_BRANDS")
    pairs = (consider.shape[1] + 1) // 2
    slots = pairs + 3
    thresholds = np.zeros((consider.shape[0], 2 * pairs), np.uint64)
    for h in range(consider.shape[0]):
        for b in range(consider.shape[1]):
            thresholds[h, b] = consider[h, b]
    buyers = MarketBuyers(
        rows, taste, alpha, budget, tier, attrs, delta, paid, brand, thresholds,
        budget_factor, v0_base, v0_alpha, key, slots, pairs, records,
    )  # fmt: skip
    setup = _setup(nest, lam, taste.shape[1] + 2)  # coefficients, then the budget
    open0 = limits > 0
    # Pass 1, in pool order: first choices over what is open at the start of the month. The loop of
    # _first_choices, written out here, with the records draws again read: as a call it measured
    # about 5% slower in this kernel (not in serve_matrix).
    first, demand = np.empty(n, np.int64), np.zeros(n_products, np.int64)
    ws, which, pos = setup.ws, setup.which, setup.ws.i64[1]
    no, none = _FLAGS[0], np.empty(0, np.int64)
    for r0 in range(0, n, CHUNK):
        c = min(CHUNK, n - r0)
        for q in range(c):
            which[q] = r0 + q
        _fill_market(which, c, buyers, open0, no, ws)
        choose_chunk(c, nest, lam, setup.inv_lam, no, none, ws)
        _keep_records(which, c, buyers, ws)
        for q in range(c):
            first[r0 + q] = pos[q]
            if pos[q] >= 0:
                demand[pos[q]] += 1
    # Pass 2, in serving order, if a limit binds: who finds its first choice closed draws again.
    if np.any(demand > limits):
        _serve_queue(buyers, first, limits, open0, np.uint64(n * slots), np.empty(0, np.int64), setup)
    # Pass 3, in pool order: the choices; who took the outside option may stay (defer).
    counts = np.zeros(n_products, np.int64)
    for r in range(n):
        i = rows[r]
        ch = first[r]
        if ch >= 0:
            counts[ch] += 1
            choice[i] = product_id[ch]
            stays[i] = False
        else:
            choice[i] = -1
            x = word(key, np.uint64(r * slots + pairs + 2))
            stays[i] = may_defer[i] & ((x >> _S32) < defer)
    return counts


# ------------------------------------------------------------------ arrivals

_QUARTER_PI = _F(np.pi / 4.0)
_S3, _S5, _S7, _S9 = _F(-1.0 / 6.0), _F(1.0 / 120.0), _F(-1.0 / 5040.0), _F(1.0 / 362880.0)
_K2, _K4, _K6, _K8 = _F(-0.5), _F(1.0 / 24.0), _F(-1.0 / 720.0), _F(1.0 / 40320.0)
_TWO24 = _F(2.0**-24)
_S40 = np.uint64(40)
_S8 = np.uint64(8)
_M24 = np.uint64(0xFFFFFF)


@_jit_fma
def _normal_pairs(
    u1: NDArray[np.float32],
    u2: NDArray[np.float32],
    z0: NDArray[np.float32],
    z1: NDArray[np.float32],
    lg: NDArray[np.float32],
    bits: NDArray[np.int32],
    c: int,
) -> None:
    """Box-Muller: ``z0 = rho cos(2 pi u2)``, ``z1 = rho sin(2 pi u2)``, ``rho = sqrt(-2 log u1)``, float32."""
    _log_row(u1, lg, bits, c)
    for r in range(c):
        rho = np.sqrt(_F(-2.0) * lg[r])
        t = u2[r] * _F(4.0)
        q = np.floor(t + _HALF)
        y = (t - q) * _F(2.0) * _QUARTER_PI  # the angle's remainder, in [-pi/4, pi/4]
        y2 = y * y
        sn = y * (_ONE_F + y2 * (_S3 + y2 * (_S5 + y2 * (_S7 + y2 * _S9))))
        cs = _ONE_F + y2 * (_K2 + y2 * (_K4 + y2 * (_K6 + y2 * _K8)))
        k = np.int32(q)
        odd = (k & 1) == 1
        a = -sn if odd else cs  # cos of the angle (quarter turns k, then y)
        b = cs if odd else sn  # its sine
        flip = (k & 2) == 2
        z0[r] = rho * (-a if flip else a)
        z1[r] = rho * (-b if flip else b)


@_jit_fma
def draw_buyers(
    key: np.uint64,
    tier_cdf: NDArray[np.float64],
    family: np.uint64,
    log_budget: float,
    budget_sigma: float,
    alpha_at_median: float,
    income_elasticity: float,
    mean: NDArray[np.float32],
    sd: NDArray[np.float32],
    large: int,
    family_large: float,
    out_tier: NDArray[np.int16],
    out_family: NDArray[np.bool_],
    out_budget: NDArray[np.float32],
    out_alpha: NDArray[np.float32],
    out_taste: NDArray[np.float32],
) -> None:
    """Draw the attributes of ``len(out_tier)`` new buyers into the ``out_*`` arrays.

    Buyer ``r`` uses words ``r * slots ..`` of the stream ``key`` (``slots = 1 + pairs``):
    word 0 gives its city tier (inverse CDF on ``tier_cdf``, high half) and whether it has a
    family (low half below the threshold ``family``); the next words give pairs of standard
    normals by Box-Muller on two 24-bit uniforms (tails cut beyond 5.9 sd): the first is the
    log budget's, the others the tastes'. Then ``budget = exp(log_budget + budget_sigma z)``,
    ``alpha = alpha_at_median * exp(-income_elasticity * budget_sigma * z)`` (which is
    ``alpha * (reference / budget) ** eta``), ``taste_k = mean_k + sd_k z_k``, plus
    ``family_large`` on column ``large`` for family buyers.
    """
    n = out_tier.shape[0]
    n_tastes = mean.shape[0]
    pairs = (n_tastes + 2) // 2
    slots = 1 + pairs
    n_tiers = tier_cdf.shape[0]
    u1 = np.empty(CHUNK, np.float32)
    u2 = np.empty(CHUNK, np.float32)
    z0 = np.empty(CHUNK, np.float32)
    z1 = np.empty(CHUNK, np.float32)
    lg = np.empty(CHUNK, np.float32)
    ex = np.empty(CHUNK, np.float32)
    bits = np.empty(CHUNK, np.int32)
    sig = _F(budget_sigma)
    for r0 in range(0, n, CHUNK):
        c = min(CHUNK, n - r0)
        for q in range(c):
            x = word(key, np.uint64((r0 + q) * slots))
            u = (float(x >> _S32) + 0.5) / _TWO32
            k = 0
            for h in range(n_tiers - 1):
                k += u >= tier_cdf[h]
            out_tier[r0 + q] = k
            out_family[r0 + q] = (x & _LOW) < family
        for p in range(pairs):
            for q in range(c):
                x = word(key, np.uint64((r0 + q) * slots + 1 + p))
                u1[q] = (_F((x >> _S40) & _M24) + _HALF) * _TWO24
                u2[q] = (_F((x >> _S8) & _M24) + _HALF) * _TWO24
            _normal_pairs(u1, u2, z0, z1, lg, bits, c)
            for side in range(2):
                z = z0 if side == 0 else z1
                col = 2 * p + side - 1  # normal 0 is the budget's, normal k the taste k - 1's
                if col < 0:
                    for q in range(c):
                        lg[q] = _F(log_budget) + sig * z[q]
                    _exp_row(lg, ex, bits, c)
                    for q in range(c):
                        out_budget[r0 + q] = ex[q]
                    for q in range(c):
                        lg[q] = _F(-income_elasticity) * sig * z[q]
                    _exp_row(lg, ex, bits, c)
                    for q in range(c):
                        out_alpha[r0 + q] = _F(alpha_at_median) * ex[q]
                elif col < n_tastes:
                    mk, sk = mean[col], sd[col]
                    for q in range(c):
                        out_taste[r0 + q, col] = mk + sk * z[q]
        for q in range(c):
            if out_family[r0 + q]:
                out_taste[r0 + q, large] += _F(family_large)


#: The pool's columns, in the order :func:`keep_rows` takes them (``agents.BuyerPool.ARRAYS``).
POOL_COLUMNS = ("id", "market", "tier", "family", "budget", "alpha", "taste", "arrived", "choice", "leaves")


@_jit
def keep_rows(
    keep: NDArray[np.bool_],
    ids: NDArray[np.int64],
    market: NDArray[np.int16],
    tier: NDArray[np.int16],
    family: NDArray[np.bool_],
    budget: NDArray[np.float32],
    alpha: NDArray[np.float32],
    taste: NDArray[np.float32],
    arrived: NDArray[np.int32],
    choice: NDArray[np.int32],
    leaves: NDArray[np.bool_],
) -> int:
    """Move the pool's rows where ``keep`` is true to the front, in order, in place; returns how many."""
    w = 0
    for r in range(keep.shape[0]):
        if keep[r]:
            if w != r:
                ids[w] = ids[r]
                market[w] = market[r]
                tier[w] = tier[r]
                family[w] = family[r]
                budget[w] = budget[r]
                alpha[w] = alpha[r]
                for k in range(taste.shape[1]):
                    taste[w, k] = taste[r, k]
                arrived[w] = arrived[r]
                choice[w] = choice[r]
                leaves[w] = leaves[r]
            w += 1
    return w
