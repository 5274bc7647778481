"""Instrument taggers over bags of instance features (weak-mic_gururani_thesis, chapters 3-5).

A *bag* is a clip's instance features ``(batch, instances, dim)`` (OpenMIC: 10 instances of 0.96 s x
128 VGGish dims); every tagger maps it to clip-level probabilities ``(batch, classes)`` (20 OpenMIC
classes). The thesis's models:

* :class:`AttentionMIL` ``pooling="attention"``: **ATT** (§3.2.2, Fig. 3.3): an embedding of three
  128-unit FC layers (each followed by batch norm, ReLU and dropout 0.6) with a skip connection from the
  input to the last embedding, a prediction layer ``f(x)`` (sigmoid, per instance and class) and an
  attention layer ``σ(vᵀh(x))`` normalised over the instances per class (eq. 3.4); the bag score is
  ``Σ_x w_x f(x)`` (eq. 3.3). ``pooling="mean"`` is **FC_T** (§3.3.1): the same embedding, mean pooling.
  Parameters: FC_T 52 116 + 768 batch-norm affine (the thesis counts 52 116: its count leaves out the
  batch-norm scales and shifts), ATT 54 696 + 768.
* :class:`FlatFC`: **FC** (§3.3.1): the bag flattened to 1 280 values, hidden layers 512, 512, 128 with
  Leaky ReLU (0.01) and dropout, 20 sigmoid outputs: 986 772 parameters, the thesis's count.
* :class:`BiGRU`: **RNN** (§3.3.1): three bi-directional GRU layers of 64 units per direction; the last
  hidden states of both directions (128 values, "a 64-dimensional embedding" per direction) feed one FC
  layer with a sigmoid: 226 068 parameters, the thesis's count.
* :class:`RandomForestTagger`: **RF_BR** (§3.3.1, the OpenMIC baseline of Humphrey et al.): one
  scikit-learn random forest per class (binary relevance) on the time-averaged features, kept as a
  pickled blob in a buffer so that a checkpoint holds it like any other tagger.
* :class:`M2Bank`: **DGM** (§4.3-4.4, Kingma et al.'s M2): one semi-supervised VAE per class (binary
  relevance, so 20 of them, batched: every class has its own weights), encoder ``q(z|x, y)`` and
  decoder ``p(x|y, z)`` with the hidden sizes of Table 4.1 (``h1``, ``h2``, ``h3``; ReLU), z = 64, and
  the classifier ``q(y|x)`` a feed-forward network with dropout as FC. Its ``forward`` is ``q(y = 1|x)``.

:class:`Tagger` wraps a head with the features' standardisation (training-set mean and standard
deviation per dimension) and, when the features come from audio, the frozen embedding network
(:class:`weakmir.models.embedding.MelEmbedding`): what ``weakmir tag`` reads.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import torch
from torch import nn

from . import build, register


class _Kwargs:
    def kwargs(self) -> dict:
        return dict(self._kwargs)


class Dropout(nn.Dropout):
    """Inverted dropout whose mask is drawn with ``torch.rand``: the same distribution as
    :class:`torch.nn.Dropout` (each element kept with probability ``1 - p`` and scaled by ``1 / (1 - p)``),
    about three times faster on CPU in this torch build, whose Bernoulli kernel dominated a mean-teacher
    step (two embedded forwards, six dropouts, per step). No parameters: checkpoints are unchanged.

    Shape: any ``(...)`` -> the same.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p >= 1.0:
            return torch.zeros_like(x)
        keep = torch.rand(x.shape, dtype=x.dtype, device=x.device).ge_(self.p).to(x.dtype).mul_(1.0 / (1.0 - self.p))
        return x * keep


@register("mil_attention", "mil_head")
class AttentionMIL(nn.Module, _Kwargs):
    """ATT (``pooling="attention"``) or FC_T (``pooling="mean"``); see the module docstring.

    Shape: ``(batch, instances, dim) -> (batch, classes)`` probabilities.
    """

    def __init__(self, dim: int = 128, hidden: int = 128, layers: int = 3, classes: int = 20, dropout: float = 0.6,
                 skip: bool = True, pooling: str = "attention"):
        super().__init__()
        if pooling not in ("attention", "mean"):
            raise ValueError(f"pooling {pooling!r}: use attention or mean")
        if skip and dim != hidden:
            raise ValueError(f"the input skip needs dim == hidden (got {dim} and {hidden})")
        self._kwargs = {"dim": dim, "hidden": hidden, "layers": layers, "classes": classes, "dropout": dropout,
                        "skip": skip, "pooling": pooling}
        self.skip, self.pooling, self.classes = skip, pooling, classes
        blocks, d = [], dim
        for _ in range(layers):
            blocks.append(nn.ModuleDict({"fc": nn.Linear(d, hidden), "bn": nn.BatchNorm1d(hidden)}))
            d = hidden
        self.embedding = nn.ModuleList(blocks)
        self.drop = Dropout(dropout)
        self.prediction = nn.Linear(hidden, classes)
        self.attention_layer = nn.Linear(hidden, classes) if pooling == "attention" else None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, instances, dim) -> (batch, instances, hidden)``: h(x)."""
        b, n, _ = x.shape
        h = x.reshape(b * n, -1)
        for blk in self.embedding:
            h = self.drop(torch.relu(blk["bn"](blk["fc"](h))))
        h = h.reshape(b, n, -1)
        return h + x if self.skip else h

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Instance scores f(x) and attention weights w_x, each ``(batch, instances, classes)``; the
        weights sum to 1 over the instances per class (eq. 3.4; constant 1/instances for mean pooling)."""
        h = self.embed(x)
        f = torch.sigmoid(self.prediction(h))
        if self.attention_layer is None:
            w = torch.full_like(f, 1.0 / f.shape[1])
        else:
            a = torch.sigmoid(self.attention_layer(h))
            w = a / a.sum(dim=1, keepdim=True)
        return f, w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, instances, dim) -> (batch, classes)``: S(X) = Σ_x w_x f(x) (eq. 3.3)."""
        f, w = self.parts(x)
        return (w * f).sum(dim=1).clamp(1e-7, 1 - 1e-7)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, instances, dim) -> (batch, instances, classes)`` attention weights."""
        return self.parts(x)[1]


@register("mil_fc", "mil_head")
class FlatFC(nn.Module, _Kwargs):
    """FC: the flattened bag through hidden layers with Leaky ReLU (0.01) and dropout.

    Shape: ``(batch, instances, dim) -> (batch, classes)`` probabilities; ``instances * dim`` inputs.
    """

    def __init__(self, instances: int = 10, dim: int = 128, hidden: tuple = (512, 512, 128), classes: int = 20,
                 dropout: float = 0.5):
        super().__init__()
        self._kwargs = {"instances": instances, "dim": dim, "hidden": list(hidden), "classes": classes,
                        "dropout": dropout}
        layers, d = [], instances * dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.LeakyReLU(0.01), Dropout(dropout)]
            d = h
        layers.append(nn.Linear(d, classes))
        self.net = nn.Sequential(*layers)
        self.instances, self.dim = instances, dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, instances, dim) -> (batch, classes)``."""
        return torch.sigmoid(self.net(x.reshape(x.shape[0], -1))).clamp(1e-7, 1 - 1e-7)


@register("mil_rnn", "mil_head")
class BiGRU(nn.Module, _Kwargs):
    """RNN: a bi-directional GRU over the instances; the last hidden state of each direction -> FC.

    Shape: ``(batch, instances, dim) -> (batch, classes)`` probabilities.
    """

    def __init__(self, dim: int = 128, hidden: int = 64, layers: int = 3, classes: int = 20, dropout: float = 0.0):
        super().__init__()
        self._kwargs = {"dim": dim, "hidden": hidden, "layers": layers, "classes": classes, "dropout": dropout}
        self.gru = nn.GRU(dim, hidden, num_layers=layers, batch_first=True, bidirectional=True, dropout=dropout)
        self.out = nn.Linear(2 * hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, instances, dim) -> (batch, classes)``."""
        _, h = self.gru(x)  # (layers * 2, batch, hidden)
        last = torch.cat([h[-2], h[-1]], dim=1)
        return torch.sigmoid(self.out(last)).clamp(1e-7, 1 - 1e-7)


@register("mil_rf", "mil_head")
class RandomForestTagger(nn.Module, _Kwargs):
    """RF_BR: one random forest per class on the time-averaged features (a pickled scikit-learn
    ``MultiOutputClassifier``-like list in the ``blob`` buffer; :meth:`fit` fills it).

    Shape: ``(batch, instances, dim) -> (batch, classes)`` probabilities (no gradient).
    """

    def __init__(self, classes: int = 20, trees: int = 100, max_depth: int | None = 8, blob_size: int = 0,
                 seed: int = 0):
        super().__init__()
        self._kwargs = {"classes": classes, "trees": trees, "max_depth": max_depth, "blob_size": blob_size,
                        "seed": seed}
        self.classes = classes
        self.register_buffer("blob", torch.zeros(blob_size, dtype=torch.uint8))
        self._forests = None

    def fit(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> "RandomForestTagger":
        """Fit one forest per class on the clips where that class is observed. ``x`` ``(n, instances, dim)``,
        ``y`` and ``mask`` ``(n, classes)``. A class with one observed state only predicts that state's rate."""
        from sklearn.ensemble import RandomForestClassifier

        feats = x.mean(axis=1)
        forests = []
        for k in range(self.classes):
            sel = mask[:, k] > 0
            ys = y[sel, k].astype(int)
            if sel.sum() == 0 or len(np.unique(ys)) < 2:
                forests.append(float(ys.mean()) if sel.any() else 0.5)
                continue
            rf = RandomForestClassifier(n_estimators=self._kwargs["trees"], max_depth=self._kwargs["max_depth"],
                                        random_state=self._kwargs["seed"] + k, n_jobs=1)
            forests.append(rf.fit(feats[sel], ys))
        raw = np.frombuffer(pickle.dumps(forests), dtype=np.uint8).copy()
        self.blob = torch.from_numpy(raw)
        self._kwargs["blob_size"] = int(raw.size)
        self._forests = forests
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, instances, dim) -> (batch, classes)``."""
        if self._forests is None:
            if not self.blob.numel():
                raise RuntimeError("the random forests are not fitted (RandomForestTagger.fit)")
            self._forests = pickle.loads(self.blob.numpy().tobytes())
        feats = x.detach().float().mean(dim=1).cpu().numpy()
        cols = [np.full(len(feats), f) if isinstance(f, float) else f.predict_proba(feats)[:, 1]
                for f in self._forests]
        return torch.from_numpy(np.stack(cols, axis=1).astype(np.float32)).clamp(1e-7, 1 - 1e-7)


class _BankLinear(nn.Module):
    """``classes`` independent linear layers applied at once: ``(classes, batch, i) -> (classes, batch, o)``."""

    def __init__(self, classes: int, i: int, o: int):
        super().__init__()
        bound = 1 / math.sqrt(i)
        self.weight = nn.Parameter(torch.empty(classes, i, o).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(classes, 1, o).uniform_(-bound, bound))

    def forward(self, x):
        return torch.baddbmm(self.bias, x, self.weight)


def _mlp(classes, sizes, act, dropout=0.0) -> nn.ModuleList:
    return nn.ModuleList(_BankLinear(classes, a, b) for a, b in zip(sizes[:-1], sizes[1:]))


@register("mil_dgm", "mil_head")
class M2Bank(nn.Module, _Kwargs):
    """DGM: one M2 semi-supervised VAE per class (module docstring), batched over the classes.

    ``x`` is the flattened bag ``(batch, instances * dim)`` (or, ``pool="mean"``, its mean over the
    instances ``(batch, dim)``: 10x cheaper, for CPU runs); each class ``k`` has its own encoder
    ``(x, y) -> (μ, log σ²)`` of size ``z``, decoder ``(z, y) -> x'`` and classifier ``x -> logits (2,)``.
    ``forward``: ``(batch, instances, dim) -> (batch, classes)`` = q(y = 1 | x) per class.
    """

    def __init__(self, instances: int = 10, dim: int = 128, classes: int = 20, h1: int = 512, h2: int = 256,
                 h3: int = 0, z: int = 64, classifier: tuple = (512, 512, 128), dropout: float = 0.5,
                 pool: str = "flat"):
        super().__init__()
        if pool not in ("flat", "mean"):
            raise ValueError(f"pool {pool!r}: use flat (the bag flattened, as the thesis) or mean (over instances)")
        self._kwargs = {"instances": instances, "dim": dim, "classes": classes, "h1": h1, "h2": h2, "h3": h3, "z": z,
                        "classifier": list(classifier), "dropout": dropout, "pool": pool}
        self.pool = pool
        x = instances * dim if pool == "flat" else dim
        hid = [h for h in (h1, h2, h3) if h]
        self.classes, self.z, self.x_dim = classes, z, x
        self.encoder = _mlp(classes, [x + 2, *hid], None)
        self.mu = _BankLinear(classes, hid[-1], z)
        self.logvar = _BankLinear(classes, hid[-1], z)
        self.decoder = _mlp(classes, [z + 2, *hid[::-1], x], None)
        self.classifier = _mlp(classes, [x, *classifier, 2], None)
        self.drop = Dropout(dropout)

    def bag_input(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, instances, dim)`` -> ``(classes, batch, x)``: the bag flattened (``pool="flat"``) or
        averaged over its instances (``"mean"``), once per class."""
        x = x.reshape(x.shape[0], -1) if self.pool == "flat" else x.mean(dim=1)
        return x.unsqueeze(0).expand(self.classes, -1, -1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """q(y|x) logits ``(classes, batch, 2)``; ``x`` ``(batch, instances, dim)``."""
        h = self.bag_input(x)
        for i, layer in enumerate(self.classifier):
            h = layer(h)
            if i < len(self.classifier) - 1:
                h = self.drop(torch.nn.functional.leaky_relu(h, 0.01))
        return h

    def encode(self, xk: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``xk`` ``(classes, batch, x)``, ``y`` one-hot ``(classes, batch, 2)`` -> μ, log σ² ``(classes, batch, z)``."""
        h = torch.cat([xk, y], dim=-1)
        for layer in self.encoder:
            h = torch.relu(layer(h))
        return self.mu(h), self.logvar(h)

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``z`` ``(classes, batch, z)``, ``y`` ``(classes, batch, 2)`` -> x' ``(classes, batch, x)`` (Gaussian mean)."""
        h = torch.cat([z, y], dim=-1)
        for i, layer in enumerate(self.decoder):
            h = layer(h)
            if i < len(self.decoder) - 1:
                h = torch.relu(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, instances, dim) -> (batch, classes)`` = q(y = 1|x)."""
        return torch.softmax(self.logits(x), dim=-1)[..., 1].T.clamp(1e-7, 1 - 1e-7)


HEADS = {"att": "mil_attention", "fc_t": "mil_attention", "fc": "mil_fc", "rnn": "mil_rnn", "rf": "mil_rf",
         "mt": "mil_attention", "dgm": "mil_dgm"}


@register("weak_mic_tagger", "tagger")
class Tagger(nn.Module, _Kwargs):
    """A trained head with its feature standardisation and (for audio) its frozen embedding network.

    ``head``: a registry name of this module, ``head_kwargs`` its arguments; ``embedding``: the
    :class:`weakmir.models.embedding.MelEmbedding` arguments, or None when the head was trained on
    features that came with the data (OpenMIC's VGGish: then only feature files can be tagged).
    ``classes``: the class names. Buffers ``mean`` / ``std`` ``(dim,)``.

    Shape: ``forward`` ``(batch, instances, dim)`` raw features -> ``(batch, classes)`` probabilities.
    """

    def __init__(self, head: str, head_kwargs: dict, classes: tuple, dim: int = 128, instances: int = 10,
                 embedding: dict | None = None, features: str = "embedding"):
        super().__init__()
        self._kwargs = {"head": head, "head_kwargs": dict(head_kwargs), "classes": list(classes), "dim": dim,
                        "instances": instances, "embedding": dict(embedding) if embedding else None,
                        "features": features}
        self.head = build(head, **head_kwargs)
        self.classes, self.instances, self.features = tuple(classes), instances, features
        self.embedding = build("mel_embedding", **embedding) if embedding else None
        if self.embedding is not None:
            for p in self.embedding.parameters():
                p.requires_grad_(False)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def kwargs(self) -> dict:
        return {**self._kwargs, "head_kwargs": self.head.kwargs()}  # a fitted forest's blob size

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, instances, dim)`` raw features -> ``(batch, classes)``."""
        return self.head(self.standardise(x))

    def attention(self, x: torch.Tensor) -> torch.Tensor | None:
        """``(batch, instances, classes)`` attention weights, or None for a head without them."""
        return self.head.attention(self.standardise(x)) if hasattr(self.head, "attention") else None
