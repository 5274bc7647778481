import numpy as np
import pytest
import torch

from weakmir.data import targets
from weakmir.data.labels import STEMS4, LabelSet


def test_multi_hot_with_mask():
    v, m = targets.multi_hot(["bass", "drums"], STEMS4)
    assert v.tolist() == [0, 1, 1, 0] and m.tolist() == [1, 1, 1, 1]
    v, m = targets.multi_hot(LabelSet({"bass"}, {"vocals"}), STEMS4)
    assert v.tolist() == [0, 1, 0, 0] and m.tolist() == [1, 1, 0, 0]
    v, m = targets.multi_hot(LabelSet(), STEMS4)  # all missing
    assert m.sum() == 0


def test_separation_groups_sum_multilabel_estimates():
    # sources: one {bass, drums} stem, one vocals stem; "other" not present
    membership, assignment = targets.separation_groups([["bass", "drums"], ["vocals"]], STEMS4)
    assert assignment.tolist() == [[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]]
    assert membership.tolist() == [[0, 1], [1, 0], [0, 0]]
    src = np.stack([np.full((1, 4), 2.0), np.full((1, 4), 5.0)]).astype(np.float32)
    tg = targets.group_targets(src, membership)
    assert tg[:, 0, 0].tolist() == [5.0, 2.0, 0.0]  # vocals, bass+drums, other (silent)
    est = torch.tensor([5.0, 0.5, 1.5, 0.0]).view(1, 4, 1, 1).expand(1, 4, 1, 4).clone().requires_grad_()
    grouped = targets.group_estimates(est, torch.from_numpy(assignment))
    assert grouped.shape == (1, 3, 1, 4)
    # bass 0.5 + drums 1.5 = 2.0 equals the {bass, drums} target: loss 0 everywhere
    loss = (grouped - torch.from_numpy(tg)[None]).abs().mean()
    assert loss.item() == 0.0
    loss2 = (grouped - torch.from_numpy(tg)[None] - 1).abs().mean()
    loss2.backward()
    assert est.grad[0, 1].abs().sum() > 0 and est.grad[0, 2].abs().sum() > 0


def test_group_estimates_shape_errors():
    with pytest.raises(ValueError, match="estimates must be"):
        targets.group_estimates(torch.zeros(4, 2, 10), torch.eye(4))
    with pytest.raises(ValueError, match="does not match"):
        targets.group_estimates(torch.zeros(1, 4, 2, 10), torch.eye(3))


def test_piano_roll_frames():
    notes = np.array([[0.0, 0.5, 69, 100], [0.25, 0.26, 21, 80], [0.1, 0.2, 120, 80]])
    roll = targets.piano_roll(notes, n_frames=100, hop_length=160, sample_rate=16000)  # 100 fps
    assert roll.shape == (88, 100)
    assert roll[69 - 21, :50].all() and not roll[69 - 21, 50:].any()
    assert roll[0].sum() == 1 and roll[0, 25] == 1  # short note still gets one frame
    assert roll.sum() == 51  # the out-of-range note is dropped


def test_harmonic_mask_a4_16k_2048():
    roll = np.zeros((88, 3), np.float32)
    roll[69 - 21, 1] = 1
    mask = targets.harmonic_mask(roll, 16000, 2048, n_harmonics=2)
    assert mask.shape == (1025, 3)
    assert not mask[:, 0].any() and not mask[:, 2].any()
    # 440 Hz -> bin 56.32 -> 56; 880 -> 112.64 -> 113; 1320 -> 168.96 -> 169; each +-1
    assert np.flatnonzero(mask[:, 1]).tolist() == [55, 56, 57, 112, 113, 114, 168, 169, 170]
    detuned = targets.harmonic_mask(roll, 16000, 2048, n_harmonics=0, tuning_hz=430.0)
    assert np.flatnonzero(detuned[:, 1]).tolist() == [54, 55, 56]  # 430 -> 55.04
    two = targets.harmonic_mask(np.stack([roll, np.zeros_like(roll)]), 16000, 2048, n_harmonics=0)
    assert two.shape == (2, 1025, 3) and not two[1].any()


def test_pitch_target_bins_and_decode():
    f0 = np.array([0.0, 440.0, 10 * 2 ** (1997.3794084376191 / 1200), 1000.0])
    y, conf = targets.pitch_target(f0)
    assert y.shape == (4, 360) and conf.tolist() == [1, 1, 1, 1]
    assert y[0].sum() == 0
    assert y[2].argmax() == 0  # CREPE's lowest bin: 1997.38 cents above 10 Hz = 31.7 Hz
    cents440 = 1200 * np.log2(440 / 10)
    assert abs(targets.CREPE_CENTS[y[1].argmax()] - cents440) <= 10
    hz, voiced = targets.pitch_decode(y)
    assert voiced.tolist() == [False, True, True, True]
    assert np.allclose(hz[[1, 3]], f0[[1, 3]], rtol=2e-4)  # interior pitches decode back (the edge bin is one-sided)
    onehot, _ = targets.pitch_target(f0, sigma_cents=None)
    assert onehot.sum(axis=1).tolist() == [0, 1, 1, 1]
    assert targets.pitch_confidence(np.array([[0.9, 0.1], [0.2, 0.1]])).tolist() == pytest.approx([0.9, 0.8])
