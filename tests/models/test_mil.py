"""MIL taggers and the embedding network (models/mil.py, models/embedding.py): shapes, invariances, sizes."""

import numpy as np
import pytest
import torch

from weakmir.models import build
from weakmir.models.embedding import EXAMPLE, instances


def _params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_match_the_thesis():
    # §3.3.1: FC 986 772, FC_T 52 116 (+ 768 batch-norm affine the thesis leaves out), RNN 226 068
    assert _params(build("mil_fc")) == 986772
    assert _params(build("mil_attention", pooling="mean")) == 52116 + 768
    assert _params(build("mil_rnn")) == 226068
    assert _params(build("mil_attention")) == 52116 + 768 + 2580  # + the attention layer (128 x 20 + 20)


@pytest.mark.parametrize("name,kw", [("mil_attention", {}), ("mil_attention", {"pooling": "mean"}), ("mil_fc", {}),
                                     ("mil_rnn", {}), ("mil_dgm", {"h1": 16, "h2": 8, "z": 4, "classifier": [8]})])
def test_shape_contract(name, kw):
    m = build(name, **kw).eval()
    p = m(torch.randn(3, 10, 128))
    assert p.shape == (3, 20) and bool(((p > 0) & (p < 1)).all())


def test_attention_sums_to_one_and_att_is_invariant_to_instance_order():
    torch.manual_seed(0)
    m = build("mil_attention").eval()
    x = torch.randn(4, 10, 128)
    w = m.attention(x)
    assert w.shape == (4, 10, 20)
    assert torch.allclose(w.sum(dim=1), torch.ones(4, 20), atol=1e-6)
    perm = torch.randperm(10)
    assert torch.allclose(m(x[:, perm]), m(x), atol=1e-6)
    assert torch.allclose(m.attention(x[:, perm]), w[:, perm], atol=1e-6)
    # a bag of any length works (the weights normalise over the instances it has)
    assert m(torch.randn(2, 3, 128)).shape == (2, 20)


def test_fc_t_is_att_with_constant_attention():
    torch.manual_seed(0)
    att = build("mil_attention").eval()
    fct = build("mil_attention", pooling="mean").eval()
    fct.load_state_dict({k: v for k, v in att.state_dict().items() if not k.startswith("attention_layer")})
    with torch.no_grad():  # sigmoid(v.h + b) constant over the instances: v = 0
        att.attention_layer.weight.zero_()
    x = torch.randn(5, 10, 128)
    assert torch.allclose(att(x), fct(x), atol=1e-6)
    assert torch.allclose(fct.attention(x), torch.full((5, 10, 20), 0.1))


def test_random_forest_tagger_round_trips_through_its_state():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 10, 8)).astype(np.float32)
    y = (x.mean(axis=1)[:, :3] > 0).astype(np.float32)
    mask = np.ones_like(y)
    mask[:, 2] = 0  # a class never observed predicts 0.5
    m = build("mil_rf", classes=3, trees=5).fit(x, y, mask)
    p = m(torch.from_numpy(x)).numpy()
    assert p.shape == (60, 3) and np.all(p[:, 2] == 0.5)
    assert ((p[:, 0] > 0.5) == (y[:, 0] > 0)).mean() > 0.9
    again = build("mil_rf", **m.kwargs())
    again.load_state_dict(m.state_dict())
    assert np.allclose(again(torch.from_numpy(x)).numpy(), p)


def test_embedding_shapes_and_instances():
    e = build("mel_embedding", channels=[4, 8, 8, 16]).eval()
    assert e.logmel(torch.randn(2, EXAMPLE)).shape == (2, 1, 64, 96)
    assert e(torch.randn(2, EXAMPLE)).shape == (2, 128)
    assert e.logits(torch.randn(2, EXAMPLE)).shape == (2, 20)
    assert instances(np.zeros(16000 * 10)).shape == (10, EXAMPLE)  # a 10-s clip: 10 instances of 0.96 s
    assert instances(np.zeros(100)).shape == (1, EXAMPLE)


def test_dropout_keeps_one_minus_p_scaled_and_is_the_identity_in_eval():
    from weakmir.models.mil import Dropout

    torch.manual_seed(0)
    d = Dropout(0.6)
    x = torch.ones(200_000)
    y = d(x)
    kept = y != 0
    assert abs(float(kept.float().mean()) - 0.4) < 0.005  # keep probability 1 - p
    assert torch.allclose(y[kept], torch.full_like(y[kept], 2.5))  # scaled by 1 / (1 - p)
    assert abs(float(y.mean()) - 1.0) < 0.015  # unbiased, as torch.nn.Dropout
    x.requires_grad_(True)
    d(x).sum().backward()
    assert set(x.grad.unique().tolist()) <= {0.0, 2.5}
    d.eval()
    z = torch.randn(3, 4)
    assert torch.equal(d(z), z)
    assert torch.equal(Dropout(1.0)(z), torch.zeros_like(z))
