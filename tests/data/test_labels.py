import numpy as np
import pytest

from weakmir.data.labels import (OPENMIC, STEMS4, LabelSet, gm_instrument, instrument_stem, instrument_tag,
                                 vocabulary)
from weakmir.errors import ManifestError


def test_three_states_and_mask():
    ls = LabelSet({"vocals"}, {"drums"})
    assert ls.state("vocals") == 1 and ls.state("drums") == 0 and ls.state("bass") is None
    vals, mask = ls.vector(STEMS4)
    assert vals.tolist() == [1, 0, 0, 0] and mask.tolist() == [1, 0, 1, 0]
    assert ls.unknown(STEMS4) == ["bass", "other"]
    full = LabelSet.complete(["bass"], STEMS4)
    assert full.vector(STEMS4)[1].tolist() == [1, 1, 1, 1]
    assert LabelSet.from_dict(full.to_dict(STEMS4)) == full


def test_contradiction_and_unknown_label():
    with pytest.raises(ManifestError, match="both present and absent"):
        LabelSet({"bass"}, {"bass"})
    with pytest.raises(ManifestError, match="unknown label 'voclas'"):
        LabelSet({"voclas"}).validate(STEMS4, "x")
    with pytest.raises(ManifestError, match="unknown label vocabulary"):
        vocabulary("medleydb")


def test_gm_mapping():
    assert gm_instrument(40) == "violin" and instrument_stem("violin") == "other" and instrument_tag("violin") == "violin"
    assert gm_instrument(0, is_drum=True) == "drums" and instrument_stem("drums") == "drums"
    assert instrument_stem(gm_instrument(33)) == "bass"
    assert instrument_stem(gm_instrument(52)) == "vocals" and instrument_tag(gm_instrument(52)) == "voice"
    assert instrument_tag(gm_instrument(70)) is None  # bassoon: not an OpenMIC class
    assert all(instrument_stem(gm_instrument(p)) in STEMS4 for p in range(128))
    assert all(instrument_tag(gm_instrument(p)) in (None, *OPENMIC) for p in range(128))
    assert len(OPENMIC) == 20 and np.all(np.array(sorted(OPENMIC)) == np.array(OPENMIC))
