"""Properties of the rendered embedded corpus (needs FluidSynth + GM SoundFont)."""

import json
import shutil

import numpy as np
import pytest

from weakmir.audio import load
from weakmir.audio.silence import frame_rms_db
from weakmir.data.labels import OPENMIC, STEMS4
from weakmir.data.manifest import Manifest
from weakmir.data.notes import read_f0, read_notes
from weakmir.data.synth.build import SynthConfig, build_corpus, track_split
from weakmir.data.synth.chorale import catalog
from weakmir.errors import SoundFontError, WeakmirError


def test_catalog_has_300_usable_chorales():
    cat = catalog()
    assert len(cat) >= 300 and len(set(cat)) == len(cat)


def test_splits_are_exact_per_block():
    s = [track_split(i, 0, (0.8, 0.1, 0.1)) for i in range(20)]
    assert s.count("train") == 16 and s.count("valid") == 2 and s.count("test") == 2


@pytest.mark.parametrize("corpus", ["chorale_corpus", "pop_corpus"])
def test_manifest_mixture_and_levels(request, corpus):
    out, m, stats, cfg = request.getfixturevalue(corpus)
    m2 = Manifest.read(out / "manifest.json")
    assert m2.to_dict() == m.to_dict() and len(m2.tracks) == cfg.tracks
    for t in m2.tracks:
        mix, sr = load(m2.resolve(t.mixture))
        assert sr == cfg.sample_rate and mix.shape[1] == round(t.duration * sr)
        assert np.abs(mix).max() <= 10 ** (-1 / 20) + 1e-4  # peak -1 dBFS: no clipping
        clean = sum(load(m2.resolve(p))[0] for _, p, _ in t.clean_stems())
        assert np.abs(mix - clean).max() < 2e-4  # mixture = sum of clean stems (16-bit rounding)
        # observed tags never contradict the true tags
        assert t.tags.present <= set(t.true_tags) and not (t.tags.absent & set(t.true_tags))
        assert set(t.true_tags) <= set(OPENMIC)


def test_rendered_energy_lies_where_notes_are(chorale_corpus, pop_corpus):
    for out, m, _, _ in (chorale_corpus, pop_corpus):
        t = m.tracks[0]
        for s in t.stems:
            x, sr = load(m.resolve(s.clean_path or s.path))
            notes = read_notes(m.resolve(s.notes))
            hop = 512
            level = frame_rms_db(x, 2048, hop)
            energy = 10 ** (level / 10)
            times = np.arange(len(level)) * hop / sr
            inside = np.zeros(len(level), bool)
            for on, off, _, _ in notes:
                inside |= (times >= on - 0.05) & (times <= off + 1.0)  # + release tail
            frac = energy[inside].sum() / energy.sum()
            assert frac > 0.995, (t.id, s.id, frac)
            if (~inside).sum() > 20:  # gaps are near-silent
                assert level[~inside].max() < level[inside].max() - 40


def test_f0_of_rendered_part_matches_score(chorale_corpus, pop_corpus, torchcrepe):
    from weakmir.audio.crepe import track_f0

    chorale, pop = chorale_corpus[1], pop_corpus[1]
    vocals = [(pop, s) for t in pop.tracks for s in t.stems if s.id == "vocals"][:1]
    for m, s in [(chorale, s) for s in chorale.tracks[0].stems[:2]] + vocals:
        assert s.f0 is not None
        x, sr = load(m.resolve(s.clean_path or s.path))
        times, f0, _ = track_f0(x, sr, model="tiny")
        rt, rf, rv = read_f0(m.resolve(s.f0))
        n = min(len(times), len(rt))
        voiced = rv[:n] > 0
        edge = np.zeros(n, bool)
        for c in np.flatnonzero(np.diff(rv[:n]) != 0):
            edge[max(0, c - 3):c + 4] = True  # +-30 ms around note starts/ends
        sel = voiced & ~edge
        cents = np.abs(1200 * np.log2(f0[:n][sel] / rf[:n][sel]))
        assert sel.sum() > 100
        assert np.mean(cents < 50) > 0.9, (s.id, np.median(cents))


def test_label_noise_recorded_and_true_labels_kept(pop_corpus):
    out, m, _, _ = pop_corpus
    kinds = set()
    for t in m.tracks:
        for s in t.stems:
            own = s.provenance["source_label"]
            assert own in s.true_labels
            c = s.corruption
            if c is None:
                assert s.observed == ([own] if not s.hidden else s.observed) and s.clean_path is None
                continue
            kinds.add(c["kind"])
            if c["kind"] == "wrong_label":
                assert s.observed != [own] and s.true_labels == [own] and c["true_label"] == own
            else:  # bleed / merge: audio altered, true labels list both sources
                src = next(x for x in t.stems if x.id == c["source"])
                assert set(s.true_labels) == {own, src.provenance["source_label"]}
                noisy, _ = load(m.resolve(s.path))
                clean, _ = load(m.resolve(s.clean_path))
                other, _ = load(m.resolve(src.clean_path or src.path))
                resid = noisy - clean * (1 if "rescaled_db" not in c else 10 ** (c["rescaled_db"] / 20))
                assert np.abs(resid).max() > 1e-3
                if c["kind"] == "merge":
                    assert src.hidden and src.provenance["merged_into"] == s.id
    assert kinds  # the fixture's rates make at least one kind appear


def test_deterministic_and_independent_of_jobs(pop_corpus, tmp_path):
    out, m, _, cfg = pop_corpus  # built with jobs=2
    again, _ = build_corpus(tmp_path, SynthConfig(**{**cfg.__dict__, "tracks": 2, "jobs": 1}), progress=False)
    for a, b in zip(again.tracks, m.tracks[:2]):
        assert a.to_dict() == b.to_dict()
        xa, _ = load(again.resolve(a.mixture))
        xb, _ = load(m.resolve(b.mixture))
        assert np.array_equal(xa, xb)


def test_resume_skips_finished_and_refuses_other_options(tmp_path, chorale_corpus):
    _, _, _, cfg = chorale_corpus
    cfg = SynthConfig(**{**cfg.__dict__, "tracks": 2, "seconds": 4.0})
    _, s1 = build_corpus(tmp_path, cfg, progress=False)
    assert s1["rendered_tracks"] == 2
    _, s2 = build_corpus(tmp_path, cfg, progress=False)
    assert s2["rendered_tracks"] == 0 and s2["skipped_tracks"] == 2
    shutil.rmtree(tmp_path / "tracks" / "chorale-0001")
    m3, s3 = build_corpus(tmp_path, SynthConfig(**{**cfg.__dict__, "tracks": 3}), progress=False)
    assert s3["rendered_tracks"] == 2 and len(m3.tracks) == 3
    with pytest.raises(WeakmirError, match="seed differ"):
        build_corpus(tmp_path, SynthConfig(**{**cfg.__dict__, "seed": 99}), progress=False)
    assert not list((tmp_path / "tracks").glob(".*.tmp"))


def test_score_midi_matches_notes(chorale_corpus):
    import pretty_midi

    out, m, _, _ = chorale_corpus
    t = m.tracks[1]
    pm = pretty_midi.PrettyMIDI(str(m.resolve(t.score)))
    assert [i.name for i in pm.instruments] == [s.id for s in t.stems]
    for inst, s in zip(pm.instruments, t.stems):
        notes = read_notes(m.resolve(s.notes))
        got = np.array(sorted((n.start, n.pitch) for n in inst.notes))
        want = np.array(sorted((on, p) for on, _, p, _ in notes))
        assert np.allclose(got, want, atol=2e-3)


def test_chorale_stems_are_bach10_instruments(chorale_corpus):
    _, m, _, _ = chorale_corpus
    for t in m.tracks:
        assert [s.id for s in t.stems] == ["violin", "clarinet", "saxophone", "bassoon"]
        assert all(set(s.true_labels) <= set(STEMS4) for s in t.stems)
        assert json.loads(json.dumps(t.provenance))["source"].startswith("music21 corpus bach/")


def test_missing_soundfont_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "corpus"
    with pytest.raises(SoundFontError, match=r"nope\.sf2: SoundFont not found; pass an existing"):
        build_corpus(out, SynthConfig(tracks=1, seconds=2, soundfont=str(tmp_path / "nope.sf2")), progress=False)
    assert not out.exists()
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"not a soundfont")
    with pytest.raises(SoundFontError, match=r"bad\.sf2: not a SoundFont 2 file"):  # read before FluidSynth
        build_corpus(out, SynthConfig(tracks=1, seconds=2, soundfont=str(bad)), progress=False)
    assert not out.exists()
    pytest.importorskip("fluidsynth")
    bad.write_bytes(b"RIFF\x10\x00\x00\x00sfbk" + b"\x00" * 64)  # a header, then nothing FluidSynth can load
    with pytest.raises(SoundFontError, match=r"bad\.sf2: not a valid SoundFont"):
        build_corpus(out, SynthConfig(tracks=1, seconds=2, soundfont=str(bad)), progress=False)
    assert not out.exists()  # synth.json went with the folder it made: the corrected run is not refused


def test_slakh_preset_has_the_papers_three_instruments(tmp_path, chorale_corpus):
    """piano, distorted guitar, electric bass (score-supervised §3.1); the guitar is the sparse part."""
    from weakmir.data.notes import read_notes
    from weakmir.data.scores import ScoreClips
    from weakmir.data.synth.build import SynthConfig, build_corpus

    m, _ = build_corpus(tmp_path / "sl", SynthConfig(preset="slakh", tracks=12, seconds=10, sample_rate=16000),
                        progress=False)
    program = {"piano": 0, "guitar": 30, "bass": 33}
    name = {"piano": "piano", "guitar": "distorted_guitar", "bass": "bass"}
    seen = set()
    for t in m.tracks:  # an instrument may sit out a short song (the lead rests in intros)
        ids = [s.id for s in t.stems]
        assert ids == [i for i in program if i in ids]
        assert [s.provenance["program"] for s in t.stems] == [program[i] for i in ids]
        assert [s.instruments[0] for s in t.stems] == [name[i] for i in ids]
        assert all(len(read_notes(m.resolve(s.notes))) for s in t.stems)
        seen |= set(ids)
    assert seen == set(program)
    data = ScoreClips.from_manifest(m, ["piano", "distorted_guitar", "bass"], splits=("train", "valid", "test"),
                                    seconds=10.0)
    rates = np.mean([data.clip(k, 0)["roll"].amax(dim=1).mean(dim=-1).numpy() for k in range(12)], axis=0)
    # the paper's Slakh subset: piano 0.41, guitar 0.14, bass 0.67 (the instruments rest in two-bar stretches)
    assert rates[1] < rates[0] < rates[2]
    assert rates == pytest.approx([0.41, 0.14, 0.67], abs=0.15)


def test_chorale_rests_silence_voices_in_whole_stretches_and_zero_keeps_the_chorale():
    from weakmir.data.synth.chorale import chorale_parts

    rel = catalog()[3]
    whole, _, prov = chorale_parts(rel, np.random.default_rng(5), 30.0)
    again, _, _ = chorale_parts(rel, np.random.default_rng(5), 30.0, rests=0.0)
    assert all(np.array_equal(a.notes, b.notes) for a, b in zip(whole, again))
    rested, _, prov_r = chorale_parts(rel, np.random.default_rng(5), 30.0, rests=0.5)
    assert prov_r == prov
    stretch = 8 * 60.0 / prov["tempo_bpm"]
    n = int(np.ceil(30.0 / stretch)) + 1
    kept = 0
    playing = np.zeros((4, n), bool)
    for v, (a, b) in enumerate(zip(whole, rested)):
        sa, sb = (np.minimum((x.notes[:, 0] / stretch).astype(int), n - 1) for x in (a, b))
        # a voice keeps every note of a stretch or none of it
        for k in np.unique(sa):
            assert (sb == k).sum() in (0, (sa == k).sum())
        playing[v, np.unique(sb)] = True
        kept += len(b.notes)
    assert 0.2 * sum(len(a.notes) for a in whole) < kept < 0.9 * sum(len(a.notes) for a in whole)
    starts = np.unique(np.concatenate([np.minimum((a.notes[:, 0] / stretch).astype(int), n - 1) for a in whole]))
    assert playing[:, starts].any(axis=0).all()  # some voice plays in every stretch that had music
    with pytest.raises(WeakmirError, match="chorale preset"):
        SynthConfig(preset="pop", rests=0.3)
    assert "rests" not in SynthConfig(preset="chorale").options()


@pytest.mark.parametrize("option, value, bad", [("timbre", 6.0, 20.0), ("room", 0.5, 1.5)])
def test_timbre_and_room_alter_each_stem_as_recorded_and_zero_keeps_the_corpus(tmp_path, option, value, bad):
    from weakmir.audio.effects import reverb, tilt

    plain = SynthConfig(preset="chorale", tracks=1, seconds=4.0, sample_rate=16000, jobs=1)
    altered = SynthConfig(**{**plain.__dict__, option: value})
    assert option not in plain.options() and altered.fingerprint() != plain.fingerprint()
    m0, _ = build_corpus(tmp_path / "plain", plain, progress=False)
    m1, _ = build_corpus(tmp_path / option, altered, progress=False)
    t0, t1 = m0.tracks[0], m1.tracks[0]
    if option == "timbre":  # one slope per part, within the range
        slopes = [s.provenance["tilt_db_per_octave"] for s in t1.stems]
        assert all(-value <= s <= value for s in slopes) and len(set(slopes)) == len(slopes)
        effects = [lambda x, sr, s=s: tilt(x, sr, s) for s in slopes]
    else:  # one room per track
        room = t1.provenance["room"]
        assert 0.0 <= room["wet_level"] <= value and "room" not in t0.provenance
        effects = [lambda x, sr: reverb(x, sr, **room)] * len(t1.stems)
    for a, b, effect in zip(t0.stems, t1.stems, effects):
        x, sr = load(m0.resolve(a.path))
        y, _ = load(m1.resolve(b.path))
        assert read_notes(m0.resolve(a.notes)).tolist() == read_notes(m1.resolve(b.notes)).tolist()
        # the recorded alteration of the plain stem, up to the track's common peak scaling and 16-bit rounding
        z = effect(x, sr)
        assert np.abs(float(np.sum(z * y) / np.sum(z * z)) * z - y).max() < 2e-3
        assert np.abs(float(np.sum(x * y) / np.sum(x * x)) * x - y).max() > 0.01  # and not the plain stem
    mix = load(m1.resolve(t1.mixture))[0]
    assert np.abs(mix - sum(load(m1.resolve(s.path))[0] for s in t1.stems)).max() < 2e-4
    with pytest.raises(WeakmirError, match=option):
        SynthConfig(preset="chorale", **{option: bad})


def test_peak_normalise_keeps_every_stem_below_full_scale_even_where_the_stems_cancel():
    from weakmir.data.synth.build import PEAK, peak_normalise

    t = np.linspace(0, 1, 1000)
    a = np.sin(2 * np.pi * 5 * t)[None]
    plain = peak_normalise([a, 0.5 * a])  # the usual case: the mixture peaks at -1 dBFS
    assert np.abs(plain[0] + plain[1]).max() == pytest.approx(PEAK)
    assert np.allclose(plain[1], 0.5 * plain[0])  # one gain for all stems
    cancel = peak_normalise([a, -0.9 * a])  # the mixture is 10x below each stem: scaled to it, a stem clips
    assert max(np.abs(s).max() for s in cancel) == pytest.approx(PEAK)
    assert np.allclose(cancel[1], -0.9 * cancel[0])
    with pytest.raises(ValueError, match="silent"):
        peak_normalise([a, -a])


def test_timbre_center_shifts_the_same_tilt_draws(tmp_path):
    base = SynthConfig(preset="chorale", tracks=1, seconds=4.0, sample_rate=16000, timbre=2.0, jobs=1)
    dark = SynthConfig(**{**base.__dict__, "timbre_center": -5.0})
    assert "timbre_center" not in base.options() and dark.fingerprint() != base.fingerprint()
    slopes = [[s.provenance["tilt_db_per_octave"] for s in build_corpus(tmp_path / str(i), c, progress=False)[0]
               .tracks[0].stems] for i, c in enumerate((base, dark))]
    assert all(-7.0 <= s <= -3.0 for s in slopes[1])
    assert np.allclose(np.array(slopes[1]) - np.array(slopes[0]), -5.0, atol=0.011)  # rounded to 0.01 each
    with pytest.raises(WeakmirError, match="timbre-center"):
        SynthConfig(preset="chorale", timbre_center=-13.0)


def test_extra_soundfonts_draw_one_per_part_and_one_soundfont_keeps_the_corpus(tmp_path):
    from weakmir.data.synth.render import find_soundfont

    tim = find_soundfont("TimGM6mb")  # ships inside pretty_midi
    assert tim.is_file() and tim.parent.name == "pretty_midi"
    plain = SynthConfig(preset="chorale", tracks=2, seconds=4.0, sample_rate=16000, jobs=1)
    mixed = SynthConfig(**{**plain.__dict__, "soundfonts": ("TimGM6mb",)})
    assert "soundfonts" not in plain.options() and mixed.fingerprint() != plain.fingerprint()
    m0, _ = build_corpus(tmp_path / "plain", plain, progress=False)
    m1, _ = build_corpus(tmp_path / "mixed", mixed, progress=False)
    assert json.loads((tmp_path / "mixed" / "synth.json").read_text())["options"]["soundfonts"] == [str(tim)]
    drawn = {"FluidR3_GM": [], "TimGM6mb": []}
    for t0, t1 in zip(m0.tracks, m1.tracks):
        for a, b in zip(t0.stems, t1.stems):
            assert read_notes(m0.resolve(a.notes)).tolist() == read_notes(m1.resolve(b.notes)).tolist()
            x, _ = load(m0.resolve(a.path))
            y, _ = load(m1.resolve(b.path))
            x, y = x.mean(0), y.mean(0)
            drawn[b.provenance["soundfont"]].append(float(np.dot(x, y) / np.linalg.norm(x) / np.linalg.norm(y)))
    # both SoundFonts drawn; the default one's parts are the plain corpus's up to the track's peak scaling,
    # the other's are other recordings of the same notes
    assert drawn["FluidR3_GM"] and drawn["TimGM6mb"]
    assert min(drawn["FluidR3_GM"]) > 0.99 and max(drawn["TimGM6mb"]) < 0.5
    # a track rendered on its own, after a one-SoundFont build in this process, gets both SoundFonts too
    from weakmir.data.synth.build import render_track

    build_corpus(tmp_path / "plain", plain, progress=False)  # leaves this process's renderer with one SoundFont
    resolved = SynthConfig(**{**mixed.__dict__, "soundfont": str(find_soundfont()), "soundfonts": (str(tim),)})
    rec = render_track(resolved, 1, tmp_path / "alone")
    assert [s["provenance"]["soundfont"] for s in rec["stems"]] == [s.provenance["soundfont"] for s in m1.tracks[1].stems]
    # resumes with the same options, refuses others
    assert build_corpus(tmp_path / "mixed", mixed, progress=False)[1]["rendered_tracks"] == 0
    with pytest.raises(WeakmirError, match="soundfonts"):
        build_corpus(tmp_path / "mixed", plain, progress=False)
    with pytest.raises(SoundFontError, match="nope.sf2"):
        build_corpus(tmp_path / "bad", SynthConfig(**{**plain.__dict__, "soundfonts": (str(tmp_path / "nope.sf2"),)}),
                     progress=False)
    assert not (tmp_path / "bad").exists()


def test_openmic_clip_is_never_silent_when_every_class_drew_only_the_bar_past_the_end():
    """Seed 2000, clip 2247: one class (72 bpm: the 4th bar starts at 10.04 s) drew only that bar; the clip
    used to render silence and stop the corpus. Now its class plays the first bar."""
    from weakmir.data.synth.build import PRESETS
    from weakmir.data.synth.openmic import openmic_parts

    def parts(seed, i):
        return openmic_parts(np.random.default_rng([seed, PRESETS.index("openmic"), i]), 10.0, OPENMIC)[0]

    p = parts(2000, 2247)
    assert len(p) == 1 and len(p[0].notes) > 0 and p[0].notes[:, 0].max() < 9.95
    assert p[0].meta["bars_played"] == 1 and p[0].notes[:, 0].min() < 0.1
