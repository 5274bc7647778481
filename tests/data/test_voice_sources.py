"""MIR-1K, MedleyDB, MIR-ST500 in their published layouts, and the voice view (labellings) of a manifest."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from weakmir.data import voice
from weakmir.data.manifest import Manifest
from weakmir.data.sources import medleydb, mir1k, mir_st500
from weakmir.errors import ManifestError, WeakmirError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
MIR1K = SHARED / "mir1k"
MDB_PITCH = SHARED / "mirdata_snippets" / "tests" / "resources" / "mir_datasets" / "medleydb_pitch"
need_mir1k = pytest.mark.skipif(not (MIR1K / "Wavfile").is_dir(), reason="../shared/data/mir1k not present")


@need_mir1k
def test_mir1k_pv_frame_grid_against_the_shared_clips():
    for wav in sorted((MIR1K / "Wavfile").glob("*.wav")):
        info = sf.info(str(wav))
        times, hz = mir1k.read_pv(MIR1K / "PitchLabel" / f"{wav.stem}.pv")
        assert len(times) == mir1k.expected_frames(info.frames, info.samplerate) == int(info.frames / 16000 / 0.02) - 1
        assert times[0] == pytest.approx(0.02) and np.allclose(np.diff(times), 0.02)
        assert times[-1] + 0.02 <= info.frames / info.samplerate + 1e-9  # the last 40-ms window ends inside the clip
    # a semitone value maps to its equal-tempered Hz, 0 stays unvoiced
    t, f = mir1k.read_pv(MIR1K / "PitchLabel" / "abjones_1_01.pv")
    semis = np.loadtxt(MIR1K / "PitchLabel" / "abjones_1_01.pv")
    v = semis > 0
    assert np.allclose(f[v], 440 * 2 ** ((semis[v] - 69) / 12)) and (f[~v] == 0).all()


@need_mir1k
def test_mir1k_loader_splits_by_song_and_separates_the_channels(tmp_path):
    m = mir1k.load(MIR1K, tmp_path, progress=False)
    assert len(m.tracks) == 20 and voice.check(m) == {"full": 20}
    songs = {}
    for t in m.tracks:
        songs.setdefault(t.provenance["song"], set()).add(t.split)
    assert all(len(s) == 1 for s in songs.values())  # a song's clips on one side
    assert mir1k.song_of("abjones_1_01") == "abjones_1"
    t = m.track("Ani_1_01")
    x, _ = sf.read(str(MIR1K / "Wavfile" / "Ani_1_01.wav"))
    v, _ = sf.read(str(m.resolve(voice.voice_stem(t).path)))
    mix, _ = sf.read(str(m.resolve(t.mixture)))
    assert np.allclose(v, x[:, 1] / 2, atol=1e-6) and np.allclose(mix, x.mean(1), atol=1e-6)  # RIGHT = voice
    vt = voice.load(Manifest.read(tmp_path), None, hop=320)[0]
    assert len(vt.f0) == len(vt.mix) // 320 + 1


def test_mir1k_folds_keep_a_songs_clips_together():
    names = ["b_1_01", "a_1_01", "a_1_02", "c_2_01", "b_1_02", "a_2_01"]  # songs a_1, a_2, b_1, c_2
    f = mir1k.folds_by_song(names, 2)
    assert f == [["b_1_01", "a_1_01", "a_1_02", "b_1_02"], ["c_2_01", "a_2_01"]]  # songs by name, alternately
    assert sorted(sum(f, [])) == sorted(names)
    for k, fold in enumerate(f):
        assert not {mir1k.song_of(n) for n in fold} & {mir1k.song_of(n) for g in f[:k] + f[k + 1:] for n in g}
    with pytest.raises(WeakmirError, match="between 2 and 4"):
        mir1k.folds_by_song(names, 5)


def test_medleydb_pitch_fixture(tmp_path):
    m = medleydb.load(MDB_PITCH, tmp_path)
    (t,) = m.tracks
    assert t.mixture is None and voice.labelling(t) == "full"
    stem = voice.voice_stem(t)
    assert stem.instruments == ["male_singer"]
    vt = voice.load(Manifest.read(tmp_path), None)[0]
    assert np.allclose(vt.mix, vt.voice)  # the voice alone is its own mixture
    times, hz = medleydb.read_pitch_csv(MDB_PITCH / "pitch" / f"{t.id}.csv")
    k = int(np.argmax(hz > 0))
    j = int(round(times[k] / 0.02))
    assert vt.f0[j] == pytest.approx(hz[k], rel=1e-4) or vt.f0[j] > 0


def _wav(path, seconds=1.0, sr=16000, hz=220.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * hz * t), sr)


def test_medleydb_multitrack_layout(tmp_path):
    root = tmp_path / "MedleyDB"
    name = "Artist_Song"
    d = root / "Audio" / name
    _wav(d / f"{name}_MIX.wav")
    _wav(d / f"{name}_STEMS" / f"{name}_STEM_01.wav")
    _wav(d / f"{name}_STEMS" / f"{name}_STEM_02.wav", hz=110)
    (d / f"{name}_METADATA.yaml").write_text(
        "artist: Artist\ntitle: Song\nstems:\n"
        f"  S01: {{component: melody, filename: {name}_STEM_01.wav, instrument: female singer}}\n"
        f"  S02: {{component: bass, filename: {name}_STEM_02.wav, instrument: electric bass}}\n")
    ann = root / "Annotations" / "Pitch_Annotations"
    ann.mkdir(parents=True)
    (ann / f"{name}_STEM_01.csv").write_text("".join(f"{k * 0.0058:.4f},{220.0 if k > 10 else 0.0}\n" for k in range(170)))
    (ann / f"{name}_STEM_02.csv").write_text("0.0,110.0\n")  # a bass annotation: not a voice, left out
    m = medleydb.load(root, tmp_path / "out")
    (t,) = m.tracks
    assert t.mixture.endswith("_MIX.wav") and [s.id for s in t.stems] == ["vocals"]
    assert t.stems[0].provenance["stem"] == "S01"
    vt = voice.load(Manifest.read(tmp_path / "out"), None)[0]
    assert (vt.f0[5:45] == 220.0).all()
    (d / f"{name}_METADATA.yaml").write_text("nothing: here\n")
    with pytest.raises(WeakmirError, match="no 'stems' mapping"):
        medleydb.load(root, tmp_path / "out2")


def test_mir_st500_layout_pitch_from_notes(tmp_path):
    root = tmp_path / "MIR-ST500"
    _wav(root / "train" / "1" / "Mixture.wav", seconds=2.0)
    _wav(root / "test" / "401" / "Mixture.wav", seconds=2.0)
    notes = {"1": [[0.5, 1.0, 69], [1.0, 1.5, 72]], "401": [[0.2, 0.4, 60]], "2": [[0.0, 1.0, 64]]}
    (root / "MIR-ST500_corrected.json").write_text(json.dumps(notes))
    m = mir_st500.load(root, tmp_path / "out")  # song 2 has no audio: left out with a note
    assert [t.id for t in m.tracks] == ["mir-st500-1", "mir-st500-401"]
    assert {t.id: t.split for t in m.tracks}["mir-st500-401"] == "test"
    m = Manifest.read(tmp_path / "out")
    assert all(voice.labelling(t) == "pitch" and not t.stems for t in m.tracks)
    vt = {t.id: t for t in voice.load(m, None)}["mir-st500-1"]
    assert vt.voice is None
    assert vt.f0[int(0.75 / 0.02)] == pytest.approx(440.0) and vt.f0[int(1.25 / 0.02)] == pytest.approx(523.2511, rel=1e-4)
    assert vt.f0[int(0.25 / 0.02)] == 0 and vt.f0[int(1.75 / 0.02)] == 0
    (root / "MIR-ST500_corrected.json").write_text("{broken")
    with pytest.raises(WeakmirError, match="malformed JSON"):
        mir_st500.load(root, tmp_path / "out3")


def test_labelling_field_hides_what_it_does_not_name(tmp_path, voice_corpus):
    m = Manifest.read(voice_corpus[0])
    sung = [t for t in m.tracks if voice.voice_stem(t) is not None]
    assert sung and all(voice.labelling(t) == "full" for t in sung)
    assert all(voice.labelling(t) is None for t in m.tracks if t not in sung)  # an instrumental song has no voice view
    m = __import__("dataclasses").replace(m, tracks=sung)
    stems_only = voice.with_labelling(m, "stems")
    pitch_only = voice.with_labelling(m, "pitch")
    s = voice.load(stems_only, None)[0]
    p = voice.load(pitch_only, None)[0]
    assert s.f0 is None and s.voice is not None and p.voice is None and p.f0 is not None
    stems_only.write(voice_corpus[0] / "stems_only.json")  # round trip keeps the field
    back = Manifest.read(voice_corpus[0] / "stems_only.json")
    assert {tr.labelling for tr in back.tracks} == {"stems"}
    d = json.loads((voice_corpus[0] / "stems_only.json").read_text())
    d["tracks"][0]["labelling"] = "half"
    (voice_corpus[0] / "bad.json").write_text(json.dumps(d))
    with pytest.raises(ManifestError, match="unknown labelling 'half'"):
        Manifest.read(voice_corpus[0] / "bad.json")
    # a track labelled 'pitch' without any f0 is refused with the fix
    m2 = voice.with_labelling(m, "pitch")
    for tr in m2.tracks:
        for st in tr.stems:
            st.f0 = None
    with pytest.raises(ManifestError, match="has no voice f0"):
        voice.check(m2)


def _peak_hz(x: np.ndarray, sr: int = 16000) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(x * np.hanning(len(x))))) * sr / len(x))


def test_varispeed_moves_the_pitch_and_the_labels_with_the_audio():
    """An octave down plays twice as long: the tone's peak, its f0 labels and their times move together."""
    sr, hop = 16000, 320
    x = (0.3 * np.sin(2 * np.pi * 440.0 * np.arange(2 * sr) / sr)).astype(np.float32)
    f0 = np.zeros(len(x) // hop + 1, np.float32)
    f0[25:75] = 440.0  # voiced 0.5-1.5 s
    t = voice.VoiceTrack("t", "full", x, x.copy(), f0, conf_pe=np.full(len(f0), 0.5, np.float32), hop=hop)
    d = voice.varispeed(t, -12.0)
    assert d.id == "t@-12.00st" and len(d.mix) == len(d.voice) == pytest.approx(2 * len(x), abs=2)
    assert _peak_hz(d.mix) == pytest.approx(220.0, abs=1.0) and _peak_hz(d.voice) == pytest.approx(220.0, abs=1.0)
    assert len(d.f0) == d.frames and np.unique(d.f0[d.f0 > 0]) == pytest.approx([220.0])
    on = np.flatnonzero(d.f0 > 0) * hop / sr  # 0.5-1.5 s of the old audio is 1.0-3.0 s of the new one
    assert on[0] == pytest.approx(1.0, abs=0.021) and on[-1] == pytest.approx(3.0, abs=0.041)
    assert (d.conf_pe == 1).all() and len(d.conf_mss) == d.frames  # the confidences were the old audio's
    r = 2 ** (7 / 12)  # up a fifth: r times as fast
    u = voice.varispeed(t, 7.0)
    assert len(u.mix) == pytest.approx(len(x) / r, abs=2) and _peak_hz(u.mix) == pytest.approx(440 * r, abs=1.0)
    assert np.median(u.f0[u.f0 > 0]) == pytest.approx(440 * r, rel=1e-5)
    p = voice.varispeed(voice.VoiceTrack("p", "pitch", x, None, f0), -7.0)  # a pitch-only track: no voice
    assert p.voice is None and p.labelling == "pitch" and len(p.mix) == pytest.approx(len(x) * r, abs=2)
