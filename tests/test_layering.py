"""The package's imports keep its layers: audio <- data <- models <- (train, infer, evaluate) <- methods <-
experiments <- cli, with metrics and report as leaves, and no module imports another module's _private name.

Parsed from the source (ast), so an import inside a function counts as much as one at the top."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "weakmir"

# the layer of each top-level part; a module may import its own layer, lower layers and the leaves
LAYER = {"errors": 0, "files": 0, "config": 0, "__init__": 0, "__main__": 7,
         "audio": 1, "data": 2, "models": 3, "train": 4, "infer": 4, "evaluate": 4, "inputs": 4,
         "methods": 5, "experiments": 6, "cli": 7}
LEAVES = {"metrics", "report"}  # import nothing of weakmir but errors / files (the bottom layer)


def _part(module: str) -> str:
    """``weakmir.data.synth.build`` -> ``data``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path):
    """``(line, imported module, names)`` of every weakmir import in ``path``, relative ones resolved."""
    rel = path.relative_to(SRC.parent).with_suffix("")
    here = list(rel.parts)
    package = here if path.name == "__init__.py" else here[:-1]
    if path.name == "__init__.py":
        package = here[:-1]
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "weakmir" or mod.startswith("weakmir."):
                yield node.lineno, mod, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("weakmir"):
                    yield node.lineno, a.name, []


def _violations():
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        me = _part(".".join(path.relative_to(SRC.parent).with_suffix("").parts))
        for line, mod, names in _imports(path):
            where = f"{path.relative_to(SRC.parent)}:{line}"
            them = _part(mod)
            # names imported from a package may be submodules: ``from .. import __version__`` is fine
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    bad.append(f"{where}: imports the private name {n} from {mod}")
            if me in LEAVES:
                if them not in LEAVES | {"errors", "files"} and them != me:
                    bad.append(f"{where}: {me} is a leaf but imports {mod}")
                continue
            if them in LEAVES or them == me:
                continue
            if them not in LAYER or me not in LAYER:
                bad.append(f"{where}: {mod} has no layer in tests/test_layering.py; give it one")
            elif LAYER[them] > LAYER[me]:
                bad.append(f"{where}: {me} (layer {LAYER[me]}) imports {mod} (layer {LAYER[them]}), a higher layer")
    return bad


def test_no_import_against_the_layering_and_no_private_cross_module_import():
    bad = _violations()
    assert not bad, "\n".join(bad)


def test_the_checker_finds_an_upward_import_and_a_private_one(tmp_path, monkeypatch):
    """The test can fail: a planted data -> methods import and a private-name import are both reported."""
    import shutil

    fake = tmp_path / "weakmir"
    shutil.copytree(SRC, fake)
    (fake / "data" / "planted.py").write_text("from ..methods.self_refine import separator_step\n"
                                              "from ..evaluate import _table\n")
    monkeypatch.setattr(__import__(__name__), "SRC", fake)
    bad = _violations()
    assert any("planted.py:1: data (layer 2) imports weakmir.methods.self_refine" in b for b in bad), bad
    assert any("planted.py:2: imports the private name _table" in b for b in bad), bad


@pytest.mark.parametrize("part", sorted(LAYER))
def test_every_layer_exists(part):
    assert (SRC / part).is_dir() or (SRC / f"{part}.py").is_file(), part
