"""Models: plain ``torch.nn.Module``s built from keyword arguments.

Every model registered here can be rebuilt from ``(name, kwargs)`` (that is
what a checkpoint stores). Separators expose ``sample_rate``, ``sources`` and
``audio_channels`` and map ``(batch, channels, time)`` to
``(batch, sources, channels, time)``, so chunked inference is model-agnostic.
"""

from __future__ import annotations

import inspect

from ..errors import WeakmirError

REGISTRY: dict[str, type] = {}


ROLES = ("separator", "transcriptor", "classifier", "tagger", "mil_head", "embedding", "voice_separator",
         "pitch_estimator", "dynamic_weights", "voice_pitch")


def register(name: str, role: str):
    """Register a model class under ``name`` with its ``role`` (one of :data:`ROLES`: what the
    inference verbs accept it for: ``weakmir separate`` a separator, a voice_separator or a
    voice_pitch, ``weakmir pitch`` a voice_pitch or a pitch_estimator, ``weakmir transcribe`` a
    transcriptor, ``weakmir tag`` a tagger, ``weakmir features`` an embedding; a ``mil_head`` lives
    inside a tagger, ``dynamic_weights`` weight MAJL's training losses)."""
    if role not in ROLES:
        raise ValueError(f"model {name!r}: role {role!r} is not one of {ROLES}")

    def deco(cls):
        REGISTRY[name] = cls
        cls.registry_name = name
        cls.role = role
        return cls

    return deco


def registered() -> list[str]:
    """Names of every model (importing the model modules registers them)."""
    from . import convnext, embedding, hdemucs, joint, mask, mil, pitch_nets, tcn, voice_sep, xumx  # noqa: F401

    return sorted(REGISTRY)


def build(name: str, **kwargs):
    """Instantiate a registered model; unknown names or keyword arguments raise."""
    if name not in registered():
        raise WeakmirError(f"unknown model {name!r}; known: {', '.join(registered())}")
    try:
        return REGISTRY[name](**kwargs)
    except TypeError as e:
        raise WeakmirError(f"model {name!r}: {e}") from e


def check_kwargs(name: str, kwargs: dict, where: str) -> None:
    """Refuse, without building anything, a model ``name`` that does not take every key of ``kwargs`` (a
    recipe's model entry, checked before any work): a one-line error that starts with ``where``."""
    if name not in registered():
        raise WeakmirError(f"{where}: unknown model {name!r}; known: {', '.join(registered())}")
    try:
        inspect.signature(REGISTRY[name]).bind_partial(**kwargs)
    except TypeError as e:
        raise WeakmirError(f"{where}: model {name!r} {e}; see its keyword arguments in weakmir.models") from e
