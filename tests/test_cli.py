import json
import subprocess
import sys

from weakmir.cli import main


def run(*args):
    p = subprocess.run([sys.executable, "-m", "weakmir", *map(str, args)], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def test_synth_help_lists_every_option():
    code, out, _ = run("synth", "--help")
    assert code == 0
    for opt in ("--preset", "--tracks", "--seconds", "--sample-rate", "--seed", "--noise", "--bleed",
                "--wrong-label", "--merge", "--missing", "--programs", "--splits", "--soundfont", "--jobs", "--quiet"):
        assert opt in out, opt
    code, out, _ = run("--help")
    assert code == 0 and "synth" in out and "info" in out


def test_missing_soundfont_cli(tmp_path):
    out = tmp_path / "c"
    code, stdout, err = run("synth", out, "--soundfont", tmp_path / "x.sf2", "--tracks", "1")
    assert code == 2 and err.count("\n") == 1 and "x.sf2: SoundFont not found" in err
    assert not out.exists()
    # a second --soundfont adds one; each is checked before anything is written
    code, stdout, err = run("synth", out, "--soundfont", "TimGM6mb", "--soundfont", tmp_path / "y.sf2", "--tracks", "1")
    assert code == 2 and err.count("\n") == 1 and "y.sf2: SoundFont not found" in err
    assert not out.exists()


def test_bad_options_and_manifests(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "c"), "--bleed", "0.6", "--merge", "0.6", "--soundfont", "/dev/null"]) == 2
    assert "sum to" in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "c"), "--noise", "1.5"]) == 2  # argparse's complaint, as one line
    err = capsys.readouterr().err
    assert err == "weakmir synth: argument --noise: 1.5 is outside [0, 1]; see 'weakmir synth --help'\n"
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "weakmir.manifest", "version": 1, "tracks": []}))
    code, _, err = run("info", tmp_path)
    assert code == 2 and "holds no tracks" in err and err.count("\n") == 1


def test_synth_then_info(tmp_path, chorale_corpus):
    out = tmp_path / "c"
    code, stdout, err = run("synth", out, "--preset", "pop", "--tracks", "2", "--seconds", "3", "--noise", "0.9",
                            "--missing", "0.5", "--quiet")
    assert code == 0, err
    assert "weakmir synth: 2 pop tracks" in stdout and "label noise:" in stdout and "missing tags" in stdout
    code, stdout, _ = run("info", out, "--json")
    s = json.loads(stdout)
    assert s["tracks"] == 2 and sum(s["label_noise"].values()) >= 1 and 0 < s["missing_tag_rate"] < 1
    code, stdout, _ = run("info", out)
    assert code == 0 and "label noise" in stdout and "missing tags" in stdout
