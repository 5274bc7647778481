import numpy as np
import pytest
import torch

from weakmir.data.labels import STEMS4
from weakmir.data.manifest import Manifest
from weakmir.data.mixing import MixDataset, RandomMixer, SeparationMixer, StemPool
from weakmir.errors import AudioError


@pytest.fixture(scope="module")
def pool(pop_corpus):
    out, m, _, _ = pop_corpus
    return StemPool.from_manifest(m, view="observed", splits=("train", "valid", "test"))


def test_random_mix_is_sum_and_labels_union(pool, pop_corpus):
    _, m, _, _ = pop_corpus
    mixer = RandomMixer(pool, seconds=1.0, effects=None, return_sources=True)
    for seed in range(10):
        ex = mixer.sample(np.random.default_rng(seed))
        assert ex["mixture"].shape == (2, 44100)
        assert np.allclose(ex["mixture"], ex["sources"].sum(0), atol=1e-6)
        labels = set()
        for key in ex["keys"].split("+"):
            tid, sid = key.split("/")
            labels |= set(next(s for s in m.track(tid).stems if s.id == sid).observed)
        assert ex["labels"].tolist() == [1.0 if v in labels else 0.0 for v in STEMS4]
        assert all(np.sqrt(np.mean(s**2)) > 1e-4 for s in ex["sources"])  # silence was trimmed


def test_chance_rate_controls_class_count(pool):
    always = RandomMixer(pool, seconds=0.5, effects=None, chance=1.0, single_only=True)
    ex = always.sample(np.random.default_rng(0))
    assert ex["labels"].sum() == len([v for v in STEMS4 if pool.single[v]])
    rare = RandomMixer(pool, seconds=0.5, effects=None, chance=0.0)
    assert rare.sample(np.random.default_rng(0))["labels"].sum() >= 1  # never an empty mixture
    half = RandomMixer(pool, seconds=0.2, effects=None, chance=0.5, single_only=True)
    mean = np.mean([half.sample(np.random.default_rng(i))["labels"].sum() for i in range(200)])
    assert 1.8 < mean < 2.5  # ~4 * 0.5, plus the at-least-one rule


def test_dataset_seeding_is_worker_safe(pool):
    ds = MixDataset(RandomMixer(pool, seconds=0.5), length=6, seed=11)
    single = torch.stack([ds[i]["mixture"] for i in range(6)])
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)
    multi = torch.cat([b["mixture"] for b in loader])
    assert torch.equal(single, multi)
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["mixture"], single[0])


def test_separation_mixer_sums_multilabel_targets(pop_corpus):
    _, m, _, _ = pop_corpus
    t = m.tracks[0]
    merged = {(t.id, t.stems[0].id): ["bass", "drums"]}  # pretend refinement found a two-label stem
    pool = StemPool.from_manifest(m, view="clean", splits=("train", "valid", "test"), labels_override=merged)
    assert len(pool.multi) == 1
    mixer = SeparationMixer(pool, seconds=0.5, p_multi=1.0, effects=None, normalize_lufs=None)
    ex = mixer.sample(np.random.default_rng(0))
    assert ex["keys"].split("+")[0] == f"{t.id}/{t.stems[0].id}"
    a = ex["assignment"]
    assert a.shape == (4, 4) and ex["group_mask"].tolist() == [1, 1, 1, 0]
    assert a[:3].tolist() == [[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]]
    assert np.allclose(ex["targets"][:3].sum(0), ex["mixture"], atol=1e-5)
    assert not ex["targets"][3].any()
    # -14 LUFS normalisation scales mixture and targets together
    norm = SeparationMixer(pool, seconds=1.0, p_multi=0.0, effects=None, normalize_lufs=-14.0)
    ex = norm.sample(np.random.default_rng(1))
    from weakmir.audio.loudness import integrated_loudness

    assert integrated_loudness(ex["mixture"], 44100) == pytest.approx(-14.0, abs=0.1)
    assert np.allclose(ex["targets"].sum(0), ex["mixture"], atol=1e-4)
    batch = next(iter(torch.utils.data.DataLoader(MixDataset(norm, 4), batch_size=2)))
    assert batch["targets"].shape == (2, 4, 2, 44100)


def test_resampled_pool_and_corrupt_stem(pop_corpus, tmp_path):
    out, m, _, _ = pop_corpus
    pool16 = StemPool.from_manifest(m, splits=("train",), sample_rate=16000, channels=1, cache=False)
    seg = pool16.segment(0, 0.5, np.random.default_rng(0))
    assert seg.shape == (1, 8000)
    # a corrupt stem file: one-line error naming it
    import shutil

    copy = tmp_path / "c"
    shutil.copytree(out, copy)
    m2 = Manifest.read(copy)
    bad = m2.resolve(m2.tracks[0].stems[0].path)
    bad.write_bytes(b"garbage" * 100)
    with pytest.raises(AudioError, match=bad.name):
        StemPool.from_manifest(m2, splits=("train", "valid", "test"), cache=False)


def test_preloaded_pool_gives_the_same_segments(pop_corpus):
    """Preloading changes where samples come from (memory, not seeks), never which samples."""
    out, m, _, _ = pop_corpus
    disk = StemPool.from_manifest(m, view="observed", splits=("train",))
    mem = StemPool.from_manifest(m, view="observed", splits=("train",)).preload()
    for i in range(len(disk.stems)):
        a = disk.segment(i, 1.5, np.random.default_rng(i))
        b = mem.segment(i, 1.5, np.random.default_rng(i))
        assert a.shape == b.shape == (2, round(1.5 * 44100))
        np.testing.assert_array_equal(a, b)
    with pytest.raises(Exception, match="in memory"):
        StemPool.from_manifest(m, view="observed", splits=("train",)).preload(max_bytes=1000)
