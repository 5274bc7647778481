"""Dataset loaders against real files (../shared/data) and generated fixtures in the real layouts."""

import json

import numpy as np
import pytest

from weakmir.audio.io import load, save
from weakmir.data.manifest import Manifest
from weakmir.data.sources import musdb
from weakmir.errors import WeakmirError


def _hq_fixture(root, names=("Actions - One Minute Smile", "Some Band - Song"), subset="train", stems=None):
    rng = np.random.default_rng(0)
    for name in names:
        parts = {}
        for lab in stems or ("drums", "bass", "other", "vocals"):
            parts[lab] = (0.1 * rng.standard_normal((2, 8000))).astype(np.float32)
            save(root / subset / name / f"{lab}.wav", parts[lab], 8000, subtype="FLOAT")
        save(root / subset / name / "mixture.wav", sum(parts.values()), 8000, subtype="FLOAT")


def test_musdb_hq_layout(tmp_path):
    _hq_fixture(tmp_path / "hq")
    _hq_fixture(tmp_path / "hq", names=("Test Band - Tune",), subset="test")
    m = musdb.load_hq(tmp_path / "hq", tmp_path / "out")
    assert Manifest.read(tmp_path / "out").to_dict() == m.to_dict()
    splits = {t.id: t.split for t in m.tracks}
    assert splits == {"Actions - One Minute Smile": "valid", "Some Band - Song": "train", "Test Band - Tune": "test"}
    t = m.tracks[0]
    assert [s.id for s in t.stems] == ["vocals", "bass", "drums", "other"]
    assert all(s.true_labels == [s.id] and s.observed == [s.id] for s in t.stems)
    mix, _ = load(m.resolve(t.mixture))
    assert np.allclose(mix, sum(load(m.resolve(s.path))[0] for s in t.stems), atol=1e-6)
    # a missing stem is a one-line error naming the folder
    (tmp_path / "hq" / "train" / "Some Band - Song" / "bass.wav").unlink()
    with pytest.raises(WeakmirError, match=r"Some Band - Song: missing bass\.wav"):
        musdb.load_hq(tmp_path / "hq", tmp_path / "out2")


def test_mdx23_labelnoise_layout(tmp_path):
    _hq_fixture(tmp_path / "mdx", names=("a1b2", "c3d4"), subset="", stems=("drums", "bass", "vocals"))
    m = musdb.load_hq(tmp_path / "mdx", tmp_path / "out", noisy=True)
    assert len(m.tracks) == 2 and all(t.split == "train" for t in m.tracks)
    assert all(s.true_labels is None for t in m.tracks for s in t.stems)  # unknown, not guessed
    with pytest.raises(Exception, match="true labels are unknown"):
        m.tracks[0].clean_stems()
    with pytest.raises(WeakmirError, match="no track folders"):
        musdb.load_hq(tmp_path / "out", tmp_path / "o2", noisy=True)


def test_musdb_stem_mp4(shared_data, tmp_path):
    pytest.importorskip("av")
    m = musdb.load_stems(shared_data / "musdb_sample", tmp_path / "mus", progress=False)
    t = m.tracks[0]
    assert t.id == "Music Delta - 80s Rock" and t.split == "test" and t.sample_rate == 44100
    assert {s.id for s in t.stems} == {"vocals", "bass", "drums", "other"}
    mix, _ = load(m.resolve(t.mixture))
    total = sum(load(m.resolve(s.path))[0] for s in t.stems)
    # AAC-coded stems do not sum exactly to the AAC-coded mixture, but closely
    assert np.corrcoef(mix.ravel(), total.ravel())[0, 1] > 0.99
    assert 6.5 < t.duration < 7.5
    again = musdb.load_stems(shared_data / "musdb_sample", tmp_path / "mus", progress=False)  # reuses the FLACs
    assert again.to_dict() == m.to_dict()
    with pytest.raises(WeakmirError, match="no .stem.mp4 files"):
        musdb.load_stems(tmp_path, tmp_path / "x", progress=False)


def _frame_f1(a, b, fps=100, frames=4000):
    """Frame-level F-measure of two note lists on a 10 ms grid (pitch must match)."""
    def roll(notes):
        r = np.zeros((128, frames), bool)
        for on, off, p, _ in notes:
            r[int(p), int(on * fps):int(off * fps)] = True
        return r
    ra, rb = roll(a), roll(b)
    return 2 * (ra & rb).sum() / (ra.sum() + rb.sum())


def test_bach10_aligned_score_matches_the_recordings(shared_data, tmp_path):
    """The score aligned through NN-Name.txt lands on the performed notes (GTNotes): every stem's
    frame F >= 0.8 and >= 90 % of the performed onsets within 150 ms of a score onset of the same
    pitch; the raw .mid (not aligned) does not."""
    import pretty_midi

    from weakmir.data.notes import read_notes
    from weakmir.data.sources import bach10

    gt = bach10.load(shared_data / "bach10", tmp_path / "gt")
    sc = bach10.load(shared_data / "bach10", tmp_path / "score", notes="score")
    for tg, ts in zip(gt.tracks, sc.tracks):
        pm = pretty_midi.PrettyMIDI(str(shared_data / "bach10" / tg.id / f"{tg.id}.mid"))
        for k, (a, b) in enumerate(zip(tg.stems, ts.stems)):
            truth, score = read_notes(gt.resolve(a.notes)), read_notes(sc.resolve(b.notes))
            assert b.notes.endswith(f"{b.id}.score.csv") and np.all(score[:, 1] > score[:, 0])
            hit = [np.any((score[:, 2] == p) & (np.abs(score[:, 0] - on) < 0.15)) for on, _, p, _ in truth]
            assert np.mean(hit) >= 0.9 and _frame_f1(truth, score) >= 0.8, (tg.id, a.id)
            raw = np.array([(n.start, n.end, n.pitch, 80) for n in pm.instruments[k].notes])
            assert _frame_f1(truth, raw) < 0.5, (tg.id, a.id)
    with pytest.raises(Exception, match="gtnotes"):
        bach10.load(shared_data / "bach10", tmp_path / "x", notes="midi")


def _slakh_fixture(root, rng):
    """Two Slakh2100 tracks in the published layout: piano (0), distortion guitar (30), finger bass
    (33), drums (is_drum), and a stem that was never rendered."""
    import pretty_midi
    import yaml

    from weakmir.audio.io import save

    programs = {"S00": (0, "Piano", False), "S01": (30, "Guitar", False), "S02": (33, "Bass", False),
                "S03": (0, "Drums", True), "S04": (48, "Strings", False)}
    for split, tid in (("train", "Track00001"), ("test", "Track01877")):
        d = root / split / tid
        (d / "stems").mkdir(parents=True)
        (d / "MIDI").mkdir()
        meta = {"UUID": tid.lower(), "audio_dir": "stems", "midi_dir": "MIDI", "stems": {}}
        mix = np.zeros((1, 8000), np.float32)
        for k, (sid, (prog, cls, drum)) in enumerate(programs.items()):
            rendered = sid != "S04"
            meta["stems"][sid] = {"inst_class": cls, "program_num": prog, "is_drum": drum,
                                  "audio_rendered": rendered, "midi_program_name": cls}
            pm = pretty_midi.PrettyMIDI()
            inst = pretty_midi.Instrument(program=prog, is_drum=drum)
            inst.notes += [pretty_midi.Note(90, 40 + 7 * k, 0.1, 0.4), pretty_midi.Note(80, 45 + 7 * k, 0.5, 0.9)]
            pm.instruments.append(inst)
            pm.write(str(d / "MIDI" / f"{sid}.mid"))
            if rendered:
                x = (0.1 * rng.standard_normal((1, 8000))).astype(np.float32)
                save(d / "stems" / f"{sid}.flac", x, 8000)
                mix += x
        save(d / "mix.flac", mix, 8000)
        (d / "metadata.yaml").write_text(yaml.safe_dump(meta))
        pretty_midi.PrettyMIDI().write(str(d / "all_src.mid"))


def test_slakh2100_layout(tmp_path, rng):
    from weakmir.audio.io import load
    from weakmir.data.notes import read_notes
    from weakmir.data.sources import slakh

    _slakh_fixture(tmp_path / "slakh", rng)
    m = slakh.load(tmp_path / "slakh", tmp_path / "all")
    assert sorted((t.id, t.split) for t in m.tracks) == [("Track00001", "train"), ("Track01877", "test")]
    t = next(t for t in m.tracks if t.id == "Track00001")
    assert [s.id for s in t.stems] == ["S00", "S01", "S02", "S03"]  # S04 was never rendered
    assert [s.instruments[0] for s in t.stems] == ["piano", "distorted_guitar", "bass", "drums"]
    assert [s.observed for s in t.stems] == [["other"], ["other"], ["bass"], ["drums"]]
    notes = read_notes(m.resolve(t.stems[1].notes))
    np.testing.assert_allclose(notes, [[0.1, 0.4, 47, 90], [0.5, 0.9, 52, 80]], atol=1e-3)
    assert t.stems[3].notes is None  # drum "notes" are not a score
    # the paper's subset: only piano, distorted guitar and bass, mixed anew
    sub = slakh.load(tmp_path / "slakh", tmp_path / "sub", keep=("piano", "distorted_guitar", "bass"))
    t = next(t for t in sub.tracks if t.id == "Track00001")
    assert [s.id for s in t.stems] == ["S00", "S01", "S02"]
    mix = load(sub.resolve(t.mixture))[0]
    parts = sum(load(sub.resolve(s.path))[0] for s in t.stems)
    np.testing.assert_allclose(mix, parts, atol=1e-6)
    # split2-style lists; tracks in no list are skipped
    (tmp_path / "split2.json").write_text(json.dumps({"train": [], "validation": ["Track01877"], "test": []}))
    s2 = slakh.load(tmp_path / "slakh", tmp_path / "s2", splits_file=tmp_path / "split2.json")
    assert [(t.id, t.split) for t in s2.tracks] == [("Track01877", "valid")]
    with pytest.raises(Exception, match="no Slakh tracks"):
        slakh.load(tmp_path, tmp_path / "x")
    (tmp_path / "slakh" / "train" / "Track00001" / "stems" / "S01.flac").unlink()
    with pytest.raises(Exception, match="S01.flac: missing"):
        slakh.load(tmp_path / "slakh", tmp_path / "y")
