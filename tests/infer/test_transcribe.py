import numpy as np
import pytest
import torch

from weakmir.audio.io import save
from weakmir.cli import main
from weakmir.infer.transcribe import write_midi
from weakmir.models import build
from weakmir.train import checkpoint


def test_write_midi_reads_back_with_pretty_midi(tmp_path):
    import pretty_midi

    notes = np.array([[0.5, 1.0, 69, 100], [1.0, 1.75, 72, 64]])
    p = write_midi(tmp_path / "a.mid", {"violin": notes}, {"violin": 40})
    pm = pretty_midi.PrettyMIDI(str(p))
    (inst,) = pm.instruments
    assert inst.name == "violin" and inst.program == 40
    got = np.array([(n.start, n.end, n.pitch, n.velocity) for n in inst.notes])
    np.testing.assert_allclose(got, notes, atol=2e-3)


def test_cli_transcribe_writes_midi_per_instrument_and_a_pianoroll(tmp_path, capsys):
    """An untrained transcriptor whose output bias is set so that one note is always on: the MIDI files
    hold that note for the whole file, per instrument."""
    import pretty_midi

    torch.manual_seed(0)
    m = build("tcn_transcriptor", instruments=["piano", "bass"], n_fft=256, hop_length=125,
              channels=8, hidden=8, repeats=1, blocks=2)
    with torch.no_grad():
        conv = m.tcn.out[1]
        conv.weight.zero_()
        conv.bias.fill_(-20.0)
        conv.bias[48] = 20.0  # piano, A4 (MIDI 69) always on
        conv.bias[88 + 12] = 20.0  # bass, A1 (MIDI 33) always on
    ck = checkpoint.save(tmp_path / "tr.ckpt", m, m.kwargs())
    save(tmp_path / "take.1.wav", 0.1 * np.random.default_rng(0).standard_normal((2, 16000)).astype(np.float32), 16000)
    assert main(["transcribe", str(ck), str(tmp_path / "take.1.wav"), "-o", str(tmp_path / "out")]) == 0
    assert "notes: piano 1, bass 1" in capsys.readouterr().out
    for name, pitch in (("piano", 69), ("bass", 33)):
        (inst,) = pretty_midi.PrettyMIDI(str(tmp_path / "out" / "take.1" / f"{name}.mid")).instruments
        (note,) = inst.notes
        assert note.pitch == pitch and note.start == pytest.approx(0.0) and note.end == pytest.approx(1.0, abs=0.01)
    png = (tmp_path / "out" / "take.1" / "pianoroll.png").read_bytes()
    import struct

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", png[16:24])  # a matplotlib figure: two panels, axes and a colour bar
    assert 500 < w < 1000 and 250 < h < 600
    # a separator checkpoint is refused with a one-line error
    sep = build("tcn_separator", n_fft=256, hop_length=125, channels=8, hidden=8, repeats=1, blocks=2)
    ck2 = checkpoint.save(tmp_path / "sep.ckpt", sep, sep.kwargs())
    assert main(["transcribe", str(ck2), str(tmp_path / "take.1.wav"), "-o", str(tmp_path / "x")]) == 2
