"""Write tests/metrics/data/museval_images.json: museval's BSS Eval v4 on the bss_eval_images inputs of
mir_eval's separation tests whose channels are not trivial, the reference test_mir_eval_stored_outputs
compares against (museval takes ~25 s on them on 2 cores; stored once instead of run on every test).

    .venv/bin/python tests/metrics/make_museval_images.py [SHARED_DATA]   # default ../shared/data
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

from weakmir.metrics.reference import museval_metrics

HERE = Path(__file__).resolve().parent


def main(shared: Path) -> None:
    spec = importlib.util.spec_from_file_location("test_separation", HERE / "test_separation.py")
    ts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ts)
    mm = museval_metrics()
    res = {}
    for ref_dir, est_dir, out in ts._cases(shared):
        im = json.loads(out.read_text())["Images"]
        if im["nchan"] == 1 or im["gain"] == 1.0:
            continue
        ri = ts._images(ts._wavs(ref_dir), im["nchan"], im["gain"], im["reverse"])
        ei = ts._images(ts._wavs(est_dir), im["nchan"], im["gain"], im["reverse"])
        r = mm.bss_eval(ri.transpose(0, 2, 1), ei.transpose(0, 2, 1), window=np.inf, hop=np.inf,
                        compute_permutation=True, framewise_filters=True, filters_len=512)
        res[out.name] = {k: np.asarray(v, float).tolist() for k, v in zip(("SDR", "ISR", "SIR", "SAR"), r[:4])}
    (HERE / "data").mkdir(exist_ok=True)
    (HERE / "data" / "museval_images.json").write_text(json.dumps(
        {"about": "museval 0.4.1 bss_eval (v4, filters_len 512, whole signal, permutation) on the bss_eval_images "
                  "inputs of mir_eval's separation tests whose channels are not trivial (nchan > 1 and gain != 1); "
                  "written by tests/metrics/make_museval_images.py", "outputs": res}, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "data")
