"""The course's notebooks on one CUDA GPU, executed by papermill: ``python bench/gpu_course.py LABEL``

    python bench/gpu_course.py tiny                       # tiny-qwen3, every notebook, the defaults
    python bench/gpu_course.py 4b --model 4b-random --cap-gib 16 --only 00 01 02 03 04 05
    python bench/gpu_course.py 4b --model 4b-random --cap-gib 16 --only 06 07

``--model 4b-random`` stands in for the Hub model: a seeded random Qwen3 of Qwen3-4B's shapes
with the course tokenizer, saved once under ``.cache/`` (speed and memory depend on shapes, not
weights). ``--cap-gib`` caps every notebook kernel's CUDA memory with
``torch.cuda.set_per_process_memory_fraction`` (an IPython start-up file), so an 80–140 GiB card
behaves like a 16 GB one. Per notebook: seconds, status, the kernel's peak allocated and reserved
CUDA memory, and the card's peak as ``nvidia-smi`` saw it. Results are merged into
``bench/results/gpu_course_<LABEL>.json`` after each notebook, and the Markdown table is rewritten.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers import paths  # noqa: E402  (sets IPYTHONDIR, which the kernels read)
from tools import run_course  # noqa: E402

RESULTS = ROOT / "bench" / "results"
RANDOM_4B = paths.PROJECT_ROOT / ".cache" / "qwen3-4b-random"
# the 4B stand-in: the gpu-16gb preset, a short run, one adapter name shared by 05, 06 and 07
PARAMETERS_4B = {"05": {"PRESET": "gpu-16gb", "MAX_STEPS": 30, "RUN": "day2-4b"},
                 "06": {"RUN": "day2-4b"}, "07": {"RUN": "day2-4b"}}
# run in each kernel before the notebook's first cell; writes the kernel's CUDA peaks when it exits
STARTUP = """\
import atexit, json, os, torch
_cap = float(os.environ.get("COURSE_CAP_GIB") or 0)
if _cap and torch.cuda.is_available():
    torch.cuda.set_per_process_memory_fraction(min(1.0, _cap * 2**30 / torch.cuda.get_device_properties(0).total_memory))
def _peaks(path=os.environ.get("COURSE_PEAK_FILE")):
    if path and torch.cuda.is_available() and torch.cuda.is_initialized():
        with open(path, "w") as f:
            json.dump({"allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
                       "reserved_gib": torch.cuda.max_memory_reserved() / 2**30}, f)
atexit.register(_peaks)
"""


class CardPeak:
    """Largest ``nvidia-smi`` memory.used (GiB) while the ``with`` block runs, sampled every 0.5 s."""

    def __enter__(self):
        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(0.5):
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True).stdout.split()
            if out:
                self.peak = max(self.peak, float(out[0]) / 1024)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run(label: str, model: str, cap_gib: float, only: list[str]) -> int:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("bench/gpu_course.py needs a CUDA GPU")
    model_arg = model
    if model == "4b-random":
        from bench.gpu_shape_bench import SHAPE_4B, make_random_model

        model_arg = str(make_random_model(RANDOM_4B, SHAPE_4B))
    startup = Path(os.environ["IPYTHONDIR"]) / "profile_default" / "startup" / "50-course-gpu-bench.py"
    startup.parent.mkdir(parents=True, exist_ok=True)
    startup.write_text(STARTUP)
    out_json = RESULTS / f"gpu_course_{label}.json"
    result = json.loads(out_json.read_text()) if out_json.is_file() else {"notebooks": {}}
    result["meta"] = {"model": model, "cap_gib": cap_gib or None, "gpu": torch.cuda.get_device_name(0),
                      "torch": torch.__version__}
    failed = 0
    try:
        for nb in run_course.notebooks():
            key = nb.name[:2]
            if only and key not in only:
                continue
            params = {"MODEL": model_arg} if model != "tiny-qwen3" and key not in ("04", "08") else {}
            if model != "tiny-qwen3":
                params.update(PARAMETERS_4B.get(key, {}))
            peak_file = paths.output_dir("runs", "gpu-course") / f"peak-{label}-{key}.json"
            peak_file.unlink(missing_ok=True)
            os.environ.update(COURSE_CAP_GIB=str(cap_gib or ""), COURSE_PEAK_FILE=str(peak_file))
            print(f"▶ {nb.name} {params}", flush=True)
            with CardPeak() as card:  # a failed notebook's status names the cell; the rest still run
                seconds, status = run_course.timed_run(nb, parameters=params, width=200,
                                                       out_dir=paths.output_dir("runs", f"executed-gpu-{label}"))
            failed += status != "ok"
            row = {"seconds": round(seconds, 1), "status": status,
                   "card_peak_gib": round(card.peak, 2), "parameters": {k: v for k, v in params.items() if k != "MODEL"}}
            time.sleep(1)  # the kernel's exit hook writes its peaks
            if peak_file.is_file():
                row.update({k: round(v, 2) for k, v in json.loads(peak_file.read_text()).items()})
            result["notebooks"][nb.name] = row
            print(f"  {row}", flush=True)
            RESULTS.mkdir(exist_ok=True)
            out_json.write_text(json.dumps(result, indent=1))
            write_markdown(label, result)
    finally:
        startup.unlink(missing_ok=True)
    return 1 if failed else 0


def write_markdown(label: str, result: dict) -> None:
    meta = result["meta"]
    cap = f", each kernel capped at {meta['cap_gib']:g} GiB" if meta["cap_gib"] else ""
    lines = [f"# The course on {meta['gpu']}: {meta['model']}{cap} (torch {meta['torch']})", "",
             "| notebook | seconds | status | kernel peak allocated GiB | kernel peak reserved GiB | card peak GiB | parameters |",
             "|---|---|---|---|---|---|---|"]
    for name, r in sorted(result["notebooks"].items()):
        cells = [name, "–" if r["seconds"] is None else f"{r['seconds']:.0f}", r["status"], r.get("allocated_gib", "–"),
                 r.get("reserved_gib", "–"), "–" if r["card_peak_gib"] is None else r["card_peak_gib"], r["parameters"] or ""]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    (RESULTS / f"gpu_course_{label}.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("label", help="names the result files: bench/results/gpu_course_<LABEL>.{json,md}")
    parser.add_argument("--model", default="tiny-qwen3", choices=["tiny-qwen3", "4b-random"])
    parser.add_argument("--cap-gib", type=float, default=0, help="CUDA memory cap per kernel (0: none)")
    parser.add_argument("--only", nargs="*", default=[], help="notebook numbers to run, e.g. 00 05")
    args = parser.parse_args(argv)
    return run(args.label, args.model, args.cap_gib, args.only)


if __name__ == "__main__":
    sys.exit(main())
