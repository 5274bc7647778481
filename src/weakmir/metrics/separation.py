"""Separation metrics: BSS Eval v4 (as museval computes it), SI-SDR, NSDR/GNSDR.

Conventions
-----------
* Arrays are ``(sources, channels, time)`` (weakmir's axis order; museval and
  mir_eval use ``(sources, time, channels)``). Any sample rate; windows and
  hops are given in samples.
* :func:`bss_eval` is museval's ``metrics.bss_eval`` (BSS Eval v4, Liutkus,
  Stöter & Ito 2018) re-implemented for speed, with the same arguments and the
  same numbers: distortion filters of ``filters_len`` = 512 taps solved once on
  the whole signals (``framewise_filters=False``, v4) or per window (v3), the
  projections of each window computed with those filters from the window's
  references only (zero-padded by ``filters_len - 1``), NaN for windows where
  any reference or estimate is silent (museval's test: the channel-sum is zero
  at every sample), +inf where a denominator is exactly zero, and museval's
  ``Framing`` (``nwin = floor((T - window + hop) / hop)``; one window when
  ``window >= T``). What differs is only how it is computed: all lagged
  correlations come from short block FFTs accumulated in the frequency domain
  (one batched matrix product) instead of 125 full-length complex FFTs; one
  Cholesky factorisation of the reference Gram matrix serves every estimate
  (LU when Cholesky fails, least squares when LU fails, as museval), and the
  factors of the last few references are kept (``GRAM_SOLVERS``), so scoring
  model after model on the same song factorises once; the
  projections of all windows are batched FFTs. Equality with museval is a test
  (``tests/metrics``) and a benchmark (``benchmarks/bench_sdr.py``).
* :func:`evaluate_track` is museval's ``eval_mus_track`` convention: 1 s windows
  and hops, per-frame values, and the track value is the median over frames
  (NaN frames ignored); :func:`aggregate` takes the median over tracks — the
  "median of frames, median of tracks" of self-refine_koo2023 Table 2.
* :func:`si_sdr` follows Le Roux et al., "SDR – half-baked or well done?"
  (ICASSP 2019), eq. 2, without mean removal (pass ``zero_mean=True`` for the
  asteroid/Conv-TasNet variant); a multichannel signal is scored as one vector.
* :func:`nsdr` is ``SDR(estimate) − SDR(mixture)`` against the same reference,
  both BSS Eval v3 ``bss_eval_sources`` of that one source on the whole clip
  (512-tap filters); :func:`gnsdr` is the length-weighted mean of NSDR over
  clips, as used for MIR-1K (Hsu & Jang 2010; majl_wei2024 Table 2).
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.fft
import scipy.linalg

EPS = np.finfo(float).eps
METRICS = ("SDR", "ISR", "SIR", "SAR")


# -- validation --------------------------------------------------------------------

def validate(reference: np.ndarray, estimate: np.ndarray) -> None:
    """Raise ``ValueError`` unless both are ``(sources, channels, time)`` of one shape, finite, non-empty."""
    reference, estimate = np.asarray(reference), np.asarray(estimate)
    if reference.ndim != 3 or estimate.ndim != 3:
        raise ValueError(f"expected (sources, channels, time) arrays, got {reference.shape} and {estimate.shape}")
    if reference.shape != estimate.shape:
        raise ValueError(f"reference {reference.shape} and estimate {estimate.shape} differ in shape; "
                         "pad or trim the estimate to the reference (see pad_or_truncate)")
    if reference.size == 0:
        raise ValueError("empty signals")
    if not (np.isfinite(reference).all() and np.isfinite(estimate).all()):
        raise ValueError("signals contain NaN or inf")


def pad_or_truncate(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """The estimate cut or zero-padded to the reference's length (museval's ``padding=True``)."""
    T = reference.shape[-1]
    if estimate.shape[-1] >= T:
        return estimate[..., :T]
    pad = [(0, 0)] * (estimate.ndim - 1) + [(0, T - estimate.shape[-1])]
    return np.pad(estimate, pad)


# -- correlations -------------------------------------------------------------------

def _lagged_xcorr(a: np.ndarray, b: np.ndarray, L: int, n_fft: int = 16384) -> np.ndarray:
    """``r[i, j, L-1+k] = sum_t a[i, t] * b[j, t+k]`` for ``|k| < L`` (exact linear correlation).

    Block method: ``a`` is cut in blocks of ``B = n_fft - 2(L-1)`` samples and
    ``b`` in frames of ``n_fft`` samples that start ``L-1`` samples earlier; per
    block, the circular correlation of length ``n_fft`` holds every wanted lag
    without wrap-around. The block cross-spectra are summed over blocks as one
    batched matrix product (frequency-major layout straight out of the FFT, no
    transposes) before a single inverse FFT.

    Shape: a ``(na, T)``, b ``(nb, T)`` -> ``(na, nb, 2L-1)``.
    """
    na, T = a.shape
    nb = b.shape[0]
    # no bigger than the signal needs, no smaller than 4 L (so blocks are mostly data)
    n_fft = max(min(n_fft, scipy.fft.next_fast_len(T + 2 * (L - 1))), scipy.fft.next_fast_len(4 * L))
    B = n_fft - 2 * (L - 1)
    M = -(-T // B)
    aT = np.zeros((M * B, na))
    aT[:T] = a.T
    bT = np.zeros(((M - 1) * B + n_fft, nb))
    bT[L - 1:L - 1 + T] = b.T
    sa, sb = aT.strides, bT.strides
    fa = np.lib.stride_tricks.as_strided(aT, shape=(B, na, M), strides=(sa[0], sa[1], B * sa[0]), writeable=False)
    fb = np.lib.stride_tricks.as_strided(bT, shape=(n_fft, M, nb), strides=(sb[0], B * sb[0], sb[1]), writeable=False)
    U = scipy.fft.rfft(fa, n=n_fft, axis=0, workers=-1)  # (F, na, M): block at the frame start, zero-padded
    V = scipy.fft.rfft(fb, axis=0, workers=-1)  # (F, M, nb)
    r = scipy.fft.irfft(np.matmul(np.conj(U), V), n=n_fft, axis=0, workers=-1)  # (n_fft, na, nb)
    # the a-block sits L-1 samples later in b's frame: lag k is at index k + L - 1
    return np.ascontiguousarray(r[:2 * L - 1].transpose(1, 2, 0))


def _gram(r_refs: np.ndarray, L: int) -> np.ndarray:
    """Gram matrix of delayed references, rows and columns ordered (source-channel, delay).

    ``G[(a, p), (b, q)] = sum_t x_a[t - p] x_b[t - q] = r[a, b, L-1 + p - q]``.
    Shape: r ``(n, n, 2L-1)`` -> ``(n L, n L)``.
    """
    n = r_refs.shape[0]
    lag = np.arange(L)[:, None] - np.arange(L)[None, :] + (L - 1)
    return r_refs[:, :, lag].transpose(0, 2, 1, 3).reshape(n * L, n * L)


def _solver(G: np.ndarray):
    """A function ``D -> (G + eps I)^-1 D`` as museval solves it; what is needed is the projection onto
    the span of the delayed references, which is unique even when the filters are not.

    Order: Cholesky of ``G + eps I``; when that fails (G exactly singular, e.g. identical channels, where
    ``eps`` is below the rounding of the diagonal), Cholesky with a ridge of 1e-10 of the mean diagonal
    (the same projection to ~1e-10, in 1/50 of the time of least squares); then LU; then least squares.
    """
    A = G + EPS * np.eye(G.shape[0])
    ridge = 1e-10 * max(float(np.mean(np.diag(G))), np.finfo(float).tiny)
    for M in (A, G + ridge * np.eye(G.shape[0])):
        try:
            f = scipy.linalg.cho_factor(M, check_finite=False)
            return lambda D: scipy.linalg.cho_solve(f, D, check_finite=False)
        except np.linalg.LinAlgError:
            pass

    def general(D):
        try:
            return np.linalg.solve(A, D)
        except np.linalg.LinAlgError:
            return np.linalg.lstsq(G, D, rcond=None)[0]

    return general


class _GramSolvers:
    """The solvers of the reference Gram matrix and of its per-source blocks, kept for the last few
    references (by their bytes): scoring several estimates of one track one call at a time (every model of a
    table on the same test song) factorises its Gram matrix once. Bounded by ``max_bytes`` of factors."""

    def __init__(self, max_bytes: int = 600 * 2**20):
        from collections import OrderedDict

        self.items, self.max_bytes = OrderedDict(), int(max_bytes)

    @staticmethod
    def key(R: np.ndarray, L: int, nchan: int) -> tuple:
        import hashlib

        return R.shape, L, nchan, hashlib.blake2b(np.ascontiguousarray(R).view(np.uint8), digest_size=16).hexdigest()

    def get(self, key):
        hit = self.items.get(key)
        if hit is not None:
            self.items.move_to_end(key)
        return hit

    def put(self, key, value, nbytes: int) -> None:
        if nbytes > self.max_bytes:
            return
        self.items[key] = (value, nbytes)
        while sum(n for _, n in self.items.values()) > self.max_bytes:
            self.items.popitem(last=False)

    def clear(self) -> None:
        self.items.clear()


GRAM_SOLVERS = _GramSolvers()


# -- core --------------------------------------------------------------------------

def _filters(ref: np.ndarray, est: np.ndarray, L: int, pairs: list[tuple[int, int]], reuse: bool = False):
    """Distortion filters of museval: ``C[jest]`` onto all references, ``Cj[(jtrue, jest)]`` onto one.
    ``reuse``: take the Gram solvers of these references from :data:`GRAM_SOLVERS` (whole-signal filters).

    Shapes: ref/est ``(nsrc, nchan, T)``; C ``(nest, nsrc, nchan, L, nchan)``;
    Cj ``{(jtrue, jest): (nchan, L, nchan)}``.
    """
    nsrc, nchan, T = ref.shape
    R = ref.reshape(nsrc * nchan, T)
    E = est.reshape(nsrc * nchan, T)
    n1 = nchan * L
    key = GRAM_SOLVERS.key(R, L, nchan) if reuse else None
    hit = GRAM_SOLVERS.get(key) if reuse else None
    if hit is not None:
        (full, blocks), _ = hit
        rE = _lagged_xcorr(R, E, L)
    else:
        r = _lagged_xcorr(R, np.concatenate([R, E]), L)
        G = _gram(r[:, :nsrc * nchan], L)
        full = _solver(G)
        blocks = [_solver(G[j * n1:(j + 1) * n1, j * n1:(j + 1) * n1]) for j in range(nsrc)] if nsrc > 1 else [full]
        rE = r[:, nsrc * nchan:]
        if reuse:
            GRAM_SOLVERS.put(key, (full, blocks), G.nbytes * (1 + 1 / nsrc) if nsrc > 1 else G.nbytes)
    # D[(s, cj, p), (j, c)] = sum_t x_{s,cj}[t - p] e_{j,c}[t] = r[(s,cj), (j,c), L-1+p]
    D = rE[:, :, L - 1:].transpose(0, 2, 1).reshape(nsrc * nchan * L, nsrc * nchan)
    C = full(D).reshape(nsrc, nchan, L, nsrc, nchan).transpose(3, 0, 1, 2, 4)
    Cj = {}
    for jtrue, jest in pairs:
        sl = slice(jtrue * n1, (jtrue + 1) * n1)
        Cj[(jtrue, jest)] = blocks[jtrue](D[sl, jest * nchan:(jest + 1) * nchan]).reshape(nchan, L, nchan)
    return C, Cj


def _framing(T: int, window: float, hop: float) -> list[slice]:
    """museval's ``Framing``."""
    if window < T:
        nwin = int(np.floor((T - window + hop) / hop))
    else:
        nwin = 1
    out = []
    for t in range(nwin):
        start = t * hop
        start = 0 if (np.isnan(start) or np.isinf(start)) else start
        stop = min(t * hop + window, T)
        stop = T if (np.isnan(stop) or np.isinf(stop)) else stop
        out.append(slice(int(np.floor(start)), int(np.floor(stop))))
    return out


def _silent_frames(x: np.ndarray, frames: list[slice]) -> np.ndarray:
    """Per frame: is any source silent there (its channel-sum is zero at every
    sample: museval's ``_any_source_silent``)? ``(nsrc, nchan, T) -> (nframes,)`` bool."""
    nonzero = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x.sum(axis=1) != 0, axis=1)], axis=1)
    starts = np.array([f.start for f in frames])
    stops = np.array([f.stop for f in frames])
    counts = nonzero[:, stops] - nonzero[:, starts]  # (nsrc, nframes)
    return (counts == 0).any(axis=0)


def _take_windows(x: np.ndarray, starts: list[int], W: int) -> np.ndarray:
    """Windows of ``W`` samples at ``starts``: ``(nsrc, nchan, T) -> (nwin, nsrc, nchan, W)``."""
    if len(starts) > 1 and np.all(np.diff(starts) == starts[1] - starts[0]) and starts[1] > starts[0]:
        hop = starts[1] - starts[0]
        view = np.lib.stride_tricks.sliding_window_view(x, W, axis=-1)[..., starts[0]::hop, :][..., :len(starts), :]
        return view.transpose(2, 0, 1, 3)
    return np.stack([x[..., s:s + W] for s in starts])


def _db(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10 * np.log10(num / den)
    return np.where(den == 0, np.inf, out)


def _window_metrics(ref_w, est_w, C, Cj, pairs, L, sources_version):
    """Metrics of each (jtrue, jest) pair on windows of equal length.

    Everything stays in the frequency domain: every signal of museval's
    decomposition (zero-padded reference and estimate, the two projections) is
    a linear convolution of length ``W + L - 1 <= N``, so its energy, and the
    energy of any difference of them, is read off its rFFT by Parseval.

    Shapes: ref_w/est_w ``(nwin, nsrc, nchan, W)``; returns ``(4, npairs, nwin)``.
    """
    nwin, nsrc, nchan, W = ref_w.shape
    N = scipy.fft.next_fast_len(W + L - 1, real=True)
    Rf = scipy.fft.rfft(ref_w, n=N, axis=-1, workers=-1)  # (w, s, a, F)
    Ef = scipy.fft.rfft(est_w, n=N, axis=-1, workers=-1)  # (w, j, c, F)
    F = Rf.shape[-1]
    weight = np.full(F, 2.0 / N)
    weight[0] = 1.0 / N
    if N % 2 == 0:
        weight[-1] = 1.0 / N

    wt = np.tile(np.repeat(weight, 2), nchan)

    def en(X):  # energy over (channels, time) from spectra (w, c, F), as one BLAS gemv
        Xv = np.ascontiguousarray(X).view(np.float64).reshape(X.shape[0], -1)
        return (Xv * Xv) @ wt

    Cf = scipy.fft.rfft(C, n=N, axis=3, workers=-1)  # (jest, s, a, F, c)
    Ra = Rf.reshape(nwin, nsrc * nchan, F).transpose(2, 0, 1)  # (F, w, s a)
    Ca = Cf.transpose(3, 1, 2, 0, 4).reshape(F, nsrc * nchan, -1)  # (F, s a, jest c)
    P = np.matmul(Ra, Ca).transpose(1, 2, 0).reshape(nwin, C.shape[0], nchan, F)  # (w, jest, c, F)
    out = np.empty((4, len(pairs), nwin))
    for k, (jtrue, jest) in enumerate(pairs):
        if nsrc == 1:  # one reference: both projections are onto the same span (museval: bitwise equal, SIR = inf)
            Pj = P[:, jest]
        else:
            Cjf = scipy.fft.rfft(Cj[(jtrue, jest)], n=N, axis=1, workers=-1)  # (a, F, c)
            Pj = np.einsum("waf,afc->wcf", Rf[:, jtrue], Cjf)
        S, Ep, Pa = Rf[:, jtrue], Ef[:, jest], P[:, jest]
        e_interf, e_artif = Pa - Pj, Ep - Pa
        if sources_version:
            e_pj = en(Pj)
            sdr = _db(e_pj, en(Ep - Pj))
            isr = np.full(nwin, np.nan)
            sir = _db(e_pj, en(e_interf))
            sar = _db(en(Pa), en(e_artif))
        else:
            e_s = en(S)
            sdr = _db(e_s, en(Ep - S))
            isr = _db(e_s, en(Pj - S))
            sir = _db(en(Pj), en(e_interf))
            sar = _db(en(Pa), en(e_artif))
        out[:, k] = np.stack([sdr, isr, sir, sar])
    return out


def bss_eval(
    reference: np.ndarray,
    estimate: np.ndarray,
    window: float = 2 * 44100,
    hop: float = 1.5 * 44100,
    compute_permutation: bool = False,
    filters_len: int = 512,
    framewise_filters: bool = False,
    bsseval_sources_version: bool = False,
    window_chunk: int = 16,
) -> dict:
    """BSS Eval, museval's ``metrics.bss_eval`` with the same defaults and numbers.

    Shape:
        reference, estimate: ``(sources, channels, time)`` (``(sources, time)`` is
        read as mono). Returns a dict of ``SDR, ISR, SIR, SAR`` arrays
        ``(sources, windows)`` and ``perm`` ``(sources, 1 or windows)``.
    """
    ref = np.ascontiguousarray(reference, dtype=np.float64)
    est = np.ascontiguousarray(estimate, dtype=np.float64)
    if ref.ndim == 2:
        ref, est = ref[:, None], est[:, None]
    validate(ref, est)
    nsrc, nchan, T = ref.shape
    L = int(filters_len)
    perms = list(itertools.permutations(range(nsrc))) if compute_permutation else [tuple(range(nsrc))]
    pairs = sorted({(jtrue, p[jtrue]) for p in perms for jtrue in range(nsrc)})
    frames = _framing(T, window, hop)
    nwin = len(frames)
    vals = np.full((4, nsrc, nsrc, nwin), np.nan)

    silent = _silent_frames(ref, frames) | _silent_frames(est, frames)

    def run(idx, C, Cj):
        groups = {}
        for t in idx:
            if not silent[t]:
                groups.setdefault(frames[t].stop - frames[t].start, []).append(t)
        for W, ts in groups.items():
            for c0 in range(0, len(ts), window_chunk):
                part = ts[c0:c0 + window_chunk]
                rw = _take_windows(ref, [frames[t].start for t in part], W)
                ew = _take_windows(est, [frames[t].start for t in part], W)
                m = _window_metrics(rw, ew, C, Cj, pairs, L, bsseval_sources_version)
                for k, (jt, je) in enumerate(pairs):
                    vals[:, jt, je, part] = m[:, k]

    if not framewise_filters:
        C, Cj = _filters(ref, est, L, pairs, reuse=True)
        run(list(range(nwin)), C, Cj)
    else:
        for t, s in enumerate(frames):
            if silent[t]:
                continue
            C, Cj = _filters(ref[..., s], est[..., s], L, pairs)
            run([t], C, Cj)

    dum = np.arange(nsrc)
    sir = vals[2]
    if framewise_filters:
        mean_sir = np.array([[np.mean(sir[dum, list(p), t]) for t in range(nwin)] for p in perms])
        best = np.argmax(mean_sir, axis=0)
        popt = np.array([perms[b] for b in best]).T  # (nsrc, nwin)
        res = np.stack([vals[m][dum[:, None], popt, np.arange(nwin)[None]] for m in range(4)])
    else:
        mean_sir = np.array([np.mean(sir[dum, list(p), :]) for p in perms])
        popt = np.array(perms[int(np.argmax(mean_sir))])[:, None]
        res = vals[:, dum, popt[:, 0], :]
    return {"SDR": res[0], "ISR": res[1], "SIR": res[2], "SAR": res[3], "perm": popt}


# -- museval track convention ------------------------------------------------------------

def evaluate_track(reference, estimate, sample_rate: int, window_seconds: float = 1.0, hop_seconds: float = 1.0,
                   names=None) -> dict:
    """BSS Eval v4 of one track, museval's ``eval_mus_track`` convention.

    Shape: reference, estimate ``(sources, channels, time)``; the estimate is
    padded or cut to the reference's length first.

    Returns:
        ``{name: {"SDR": median over frames, ..., "frames": {"SDR": [...], ...}}}``
        with NaN frames ignored by the median.
    """
    reference = np.asarray(reference)
    estimate = pad_or_truncate(reference, np.asarray(estimate))
    res = bss_eval(reference, estimate, window=int(window_seconds * sample_rate), hop=int(hop_seconds * sample_rate))
    names = names or [str(i) for i in range(reference.shape[0])]
    out = {}
    for i, n in enumerate(names):
        frames = {m: res[m][i].tolist() for m in METRICS}
        out[n] = {**{m: aggregate(res[m][i]) for m in METRICS}, "frames": frames}
    return out


def aggregate(track_values) -> float:
    """Median with NaN ignored (NaN when nothing is left): over frames within a track, and over
    tracks, the museval/SiSEC aggregate."""
    v = np.asarray(track_values, dtype=float)
    v = v[~np.isnan(v)]
    return float(np.median(v)) if len(v) else float("nan")


# -- SI-SDR, NSDR ------------------------------------------------------------------------

def si_sdr(reference, estimate, zero_mean: bool = False, eps: float = 0.0) -> np.ndarray:
    """Scale-invariant SDR in dB (Le Roux et al. 2019, eq. 2).

    ``alpha = <s_hat, s> / ||s||^2``, ``SI-SDR = 10 log10(||alpha s||^2 / ||alpha s - s_hat||^2)``.

    Shape: ``(..., time)`` or ``(..., channels, time)`` scored per leading index
    over the last axis; pass ``(sources, channels, time)`` with
    ``channels_together`` semantics by reshaping to ``(sources, channels*time)``.
    Returns ``(...)``. A perfect estimate gives +inf, a silent one -inf (0/0 by
    the formula; we score it the worst), a silent reference NaN.
    """
    s = np.asarray(reference, dtype=np.float64)
    e = np.asarray(estimate, dtype=np.float64)
    if s.shape != e.shape:
        raise ValueError(f"reference {s.shape} and estimate {e.shape} differ in shape")
    if zero_mean:
        s = s - s.mean(axis=-1, keepdims=True)
        e = e - e.mean(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = (e * s).sum(-1, keepdims=True) / ((s * s).sum(-1, keepdims=True) + eps)
        target = alpha * s
        num = (target**2).sum(-1) + eps
        den = ((target - e) ** 2).sum(-1) + eps
        out = 10 * np.log10(num / den)
    # a silent estimate of a non-silent reference: 0/0 by the formula, scored -inf (the worst)
    silent = ((e * e).sum(-1) == 0) & ((s * s).sum(-1) > 0)
    return np.where(silent, -np.inf, out)


def sdr_single(reference, estimate, filters_len: int = 512) -> float:
    """BSS Eval v3 ``bss_eval_sources`` SDR of one source on the whole clip.

    Shape: ``(channels, time)`` or ``(time,)``.
    """
    r = np.atleast_2d(np.asarray(reference, dtype=np.float64))[None]
    e = np.atleast_2d(np.asarray(estimate, dtype=np.float64))[None]
    res = bss_eval(r, e, window=np.inf, hop=np.inf, filters_len=filters_len,
                   framewise_filters=True, bsseval_sources_version=True)
    return float(res["SDR"][0, 0])


def nsdr(reference, estimate, mixture, filters_len: int = 512) -> float:
    """Normalised SDR: ``SDR(estimate) - SDR(mixture)`` against ``reference`` (dB)."""
    return sdr_single(reference, estimate, filters_len) - sdr_single(reference, mixture, filters_len)


def gnsdr(nsdrs, lengths) -> float:
    """Length-weighted mean of NSDR over clips (MIR-1K's GNSDR)."""
    w = np.asarray(lengths, dtype=float)
    v = np.asarray(nsdrs, dtype=float)
    if v.shape != w.shape or len(v) == 0:
        raise ValueError("need one length per NSDR value, at least one")
    return float((w * v).sum() / w.sum())


def evaluate(reference, estimate, sample_rate: int = 44100, names=None, mixture=None) -> dict:
    """Named scalars for a track: museval-convention SDR/ISR/SIR/SAR medians and SI-SDR per source.

    Shape: ``(sources, channels, time)``; ``mixture`` ``(channels, time)`` adds NSDR.
    Keys look like ``"vocals/SDR"``, ``"vocals/SI-SDR"``, ``"vocals/NSDR"``.
    """
    reference = np.asarray(reference)
    estimate = pad_or_truncate(reference, np.asarray(estimate))
    validate(reference, estimate)
    names = names or [str(i) for i in range(reference.shape[0])]
    out = {}
    track = evaluate_track(reference, estimate, sample_rate, names=names)
    si = si_sdr(reference.reshape(reference.shape[0], -1), estimate.reshape(estimate.shape[0], -1))
    for i, n in enumerate(names):
        for m in METRICS:
            out[f"{n}/{m}"] = track[n][m]
        out[f"{n}/SI-SDR"] = float(si[i])
        if mixture is not None:
            out[f"{n}/NSDR"] = nsdr(reference[i], estimate[i], pad_or_truncate(reference[i], np.asarray(mixture)))
    return out
