"""weak-mic_gururani_thesis losses and steps on hand-built cases (methods/weak_mic.py)."""

import math

import numpy as np
import pytest
import torch

from weakmir.methods import weak_mic as wm
from weakmir.models import build
from weakmir.train.engine import lr_factor, rampdown, sigmoid_rampup


def test_bce_partial_is_bce_over_the_observed_labels():
    q = torch.tensor([[0.9, 0.2, 0.6, 0.5], [0.3, 0.7, 0.1, 0.8]])
    y = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 1.0, 1.0]])
    # by hand: clip 1 observes labels 0, 1; clip 2 observes 1, 2, 3 -- the mean BCE of each, then of the clips
    c1 = -(math.log(0.9) + math.log(0.8)) / 2
    c2 = -(math.log(0.7) + math.log(0.9) + math.log(0.2)) / 3
    assert float(wm.bce_partial(q, y, mask)) == pytest.approx((c1 + c2) / 2, rel=1e-6)
    # an unknown label changes nothing, whatever its value or prediction
    y2, q2 = y.clone(), q.clone()
    y2[0, 2], q2[0, 3] = 1.0, 0.01
    assert float(wm.bce_partial(q2, y2, mask)) == pytest.approx((c1 + c2) / 2, rel=1e-6)
    # g(p) = alpha p^gamma + beta with (1, 0, 0): the plain sum over observed labels divided by L
    assert float(wm.bce_partial(q, y, mask, gamma=0.0)) == pytest.approx((2 * c1 + 3 * c2) / 4 / 2, rel=1e-6)
    # a clip with no observed label adds nothing and is not counted
    m3 = mask.clone()
    m3[1] = 0
    assert float(wm.bce_partial(q, y, m3)) == pytest.approx(c1, rel=1e-6)
    assert float(wm.bce_partial(q, y, torch.zeros_like(mask))) == 0.0


def test_missing_as_negative_and_balanced_weights():
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    mask = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    y2, m2 = wm.missing_as_negative(y, mask)
    assert torch.equal(y2, torch.tensor([[1.0, 0.0], [0.0, 0.0]])) and torch.equal(m2, torch.ones_like(mask))
    yy = np.array([[1, 0], [0, 0], [0, 1], [0, 0]], float)
    mm = np.array([[1, 1], [1, 1], [1, 0], [1, 0]], float)
    # class 0: 1 positive, 3 negatives -> 3; class 1: no observed positive -> 1
    assert wm.positive_weights(yy, mm).tolist() == [3.0, 1.0]
    q = torch.tensor([[0.5, 0.5]])
    one = torch.tensor([[1.0, 1.0]])
    plain = float(wm.bce_partial(q, one, one))
    assert float(wm.bce_balanced(q, one, one, torch.tensor([3.0, 1.0]))) == pytest.approx(plain * 2, rel=1e-6)


def test_ramp_and_ema_values_at_known_epochs():
    assert sigmoid_rampup(0.0) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(0.5) == pytest.approx(math.exp(-1.25))
    assert sigmoid_rampup(1.0) == 1.0 and sigmoid_rampup(3.0) == 1.0
    assert rampdown(0.0) == 1.0 and rampdown(1.0) == pytest.approx(math.exp(-12.5))
    # halved every 30 epochs (§5.4.2)
    assert [lr_factor({"every": 30, "factor": 0.5}, e) for e in (0, 29, 30, 61)] == [1.0, 1.0, 0.5, 0.25]
    # ramp up over 10, down over the last 50 of 100 (§5.5.2)
    s = {"up": 10, "down": 50, "epochs": 100}
    assert lr_factor(s, 5) == pytest.approx(math.exp(-5 * 0.25))
    assert lr_factor(s, 30) == 1.0 and lr_factor(s, 75) == pytest.approx(math.exp(-12.5 * 0.25))
    # the consistency weight: beta 3 ramped over 100 epochs; the EMA decay min(1 - 1/(t+1), 0.999)
    head = build("mil_attention")
    mt = wm.MeanTeacher(head, build("mil_attention"), ema=0.999, weight=3.0, rampup_epochs=100)
    assert mt.consistency_weight(50) == pytest.approx(3 * math.exp(-1.25))
    assert mt.consistency_weight(100) == 3.0
    assert mt.decay(1) == 0.5 and mt.decay(9) == pytest.approx(0.9) and mt.decay(10 ** 6) == 0.999
    # eq. 5.2 on parameters, buffers copied
    t, s_ = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        t.weight.fill_(1.0), s_.weight.fill_(3.0)
    wm.ema_update(t, s_, 0.75)
    assert torch.allclose(t.weight, torch.full_like(t.weight, 1.5))


def test_mean_teacher_step_trains_the_student_and_moves_the_teacher():
    torch.manual_seed(0)
    mt = wm.MeanTeacher(build("mil_attention"), build("mil_attention"), steps_per_epoch=2)
    x = torch.randn(8, 10, 128)
    y = (torch.rand(8, 20) < 0.3).float()
    mask = (torch.rand(8, 20) < 0.2).float()
    before = [p.clone() for p in mt.teacher.parameters()]
    mt.train()
    loss, logs = wm.mean_teacher_step(mt, (x, y, mask))
    loss.backward()
    assert all(p.grad is None for p in mt.teacher.parameters())  # the teacher never gets a gradient
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in mt.student.parameters())
    with torch.no_grad():
        for p in mt.student.parameters():
            p.add_(0.1)
    wm.mean_teacher_step(mt, (x, y, mask))  # step 1: teacher <- 0.5 teacher + 0.5 student
    moved = [p for p, b in zip(mt.teacher.parameters(), before) if not torch.equal(p, b)]
    assert moved and int(mt.steps) == 2
    assert logs["beta"] == pytest.approx(3 * math.exp(-5))


def test_kl_is_zero_for_a_standard_normal_and_the_elbo_masks():
    mu, logvar = torch.zeros(3, 5, 64), torch.zeros(3, 5, 64)
    assert torch.equal(wm.kl_normal(mu, logvar), torch.zeros(3, 5))
    assert float(wm.kl_normal(torch.ones(1, 2), torch.zeros(1, 2))[0]) == pytest.approx(1.0)  # ½ Σ μ²
    torch.manual_seed(0)
    model = build("mil_dgm", classes=3, h1=16, h2=8, z=4, classifier=[8])
    model.eval()
    x = torch.randn(4, 10, 128)
    y = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    mask = torch.tensor([[1.0, 0, 0], [0, 0, 0], [0, 0, 1], [0, 0, 0]])
    alpha = torch.tensor([10.0, 10.0, 10.0])
    torch.manual_seed(1)
    full = wm.dgm_loss(model, x, y, mask, alpha)
    # the value of an unobserved label never enters (it is marginalised over)
    y2 = y.clone()
    y2[1, 1], y2[3, 0] = 0.0, 0.0
    torch.manual_seed(1)
    assert float(wm.dgm_loss(model, x, y2, mask, alpha).detach()) == pytest.approx(float(full.detach()), rel=1e-6)
    # alpha = beta |Du| / |Dl| per class
    assert wm.dgm_alpha(mask.numpy(), 16.0).tolist() == [48.0, 16.0 * 4 / 1, 48.0]
