#!/usr/bin/env python
"""Keep the small files of finished study runs in git, so that seeds run in different sessions
(or on different machines) pool into one report.

    python tools/run_records.py save alignment_output/runs curves_output [--records docs/runs]
    python tools/run_records.py restore [--records docs/runs]

The study tools (``tools/alignment_study.py``, ``tools/schedule_study.py``) reuse a finished run
found under their output folder and build every table and picture from its small files: the test
``results.json`` / ``results.txt`` (also of ``final_model/``), the TensorBoard events (the val
points), ``log.txt`` and the resolved configs. ``save`` copies exactly those files of each
finished run under the folders named (relative to the repository root) into
``RECORDS/<same relative path>``; checkpoints, predictions and caches stay behind. ``restore``
copies them back, so that a study rerun in a fresh checkout reuses those runs instead of
training them again, and its report covers them. Neither ever overwrites a file: an existing
file of the same name is left as it is (and named); a run folder that already holds a
checkpoint is not restored into.
"""
from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
from typing import Iterator, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_RECORDS = os.path.join("docs", "runs")
SUBFOLDERS = ("inference", "tensorboard", "final_model")  # parts of a run, never runs themselves
KEEP_NAMES = {"config.yaml", "test_config.yaml", "log.txt", "test_log.txt", "results.json", "results.txt"}


def finished_runs(folder: str) -> Iterator[str]:
    """Run folders under ``folder`` that finished: a test result, or a final checkpoint."""
    for d, subdirs, files in os.walk(folder):
        subdirs[:] = [s for s in subdirs if s not in SUBFOLDERS + ("detector_cache",)]
        if "config.yaml" not in files and "test_config.yaml" not in files:
            continue
        tested = os.path.isdir(os.path.join(d, "inference")) and any(
            os.path.isfile(os.path.join(d, "inference", s, "results.json")) for s in os.listdir(os.path.join(d, "inference")))
        if tested or "model_final.pth" in files:
            yield d


def record_files(run: str) -> List[str]:
    """The small files of one run that the reports read, relative to the run folder."""
    keep = []
    for d, _, files in os.walk(run):
        rel = os.path.relpath(d, run)
        parts = [] if rel == "." else rel.split(os.sep)
        for name in files:
            if "tensorboard" in parts and name.startswith("events.out.tfevents"):
                keep.append(os.path.join(rel, name))
            elif name in KEEP_NAMES and (not parts or parts[0] in ("inference", "final_model")):
                keep.append(os.path.normpath(os.path.join(rel, name)))
    return sorted(keep)


def copy_new(src: str, dst: str, skipped: List[str]) -> bool:
    """Copy ``src`` to ``dst`` unless ``dst`` exists (then record it in ``skipped`` if different)."""
    if os.path.exists(dst):
        if not filecmp.cmp(src, dst, shallow=False):
            skipped.append(dst)
        return False
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = dst + ".part"
    shutil.copy2(src, tmp)
    os.replace(tmp, dst)
    return True


def save(folders: List[str], records: str, root: str = ROOT) -> int:
    copied, skipped, runs = 0, [], 0
    for folder in folders:
        if not os.path.isdir(folder):
            print(f"run_records: {folder} is not a folder: name the study output folders to save "
                  "(e.g. alignment_output/runs curves_output)", file=sys.stderr)
            return 2
        for run in finished_runs(os.path.abspath(folder)):
            runs += 1
            rel = os.path.relpath(run, root)
            for f in record_files(run):
                copied += copy_new(os.path.join(run, f), os.path.join(records, rel, f), skipped)
    print(f"run_records: {runs} finished runs, {copied} files copied into {os.path.relpath(records, root)}")
    for s in skipped:
        print(f"run_records: kept the existing, different {os.path.relpath(s, root)}", file=sys.stderr)
    return 0


def restore(records: str, root: str = ROOT) -> int:
    if not os.path.isdir(records):
        print(f"run_records: {records} not found: nothing saved yet (run `save` first)", file=sys.stderr)
        return 2
    copied, skipped, held = 0, [], []
    for d, subdirs, files in os.walk(records):
        subdirs[:] = [s for s in subdirs if s not in SUBFOLDERS]
        if "config.yaml" not in files and "test_config.yaml" not in files:
            continue
        run = os.path.join(root, os.path.relpath(d, records))
        if os.path.isdir(run) and any(n.endswith(".pth") for n in os.listdir(run)):
            held.append(run)  # a live run folder (checkpoints): its own files win
            continue
        for f in record_files(d):
            copied += copy_new(os.path.join(d, f), os.path.join(run, f), skipped)
    print(f"run_records: {copied} files restored from {os.path.relpath(records, root)}")
    for s in skipped + held:
        print(f"run_records: left {os.path.relpath(s, root)} as it is", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["save", "restore"])
    p.add_argument("folders", nargs="*", help="save: the study output folders (relative to the repository)")
    p.add_argument("--records", default=DEFAULT_RECORDS, help="where the records live (default docs/runs)")
    a = p.parse_args(argv)
    records = os.path.join(ROOT, a.records)
    if a.action == "save":
        if not a.folders:
            p.error("save: name the study output folders, e.g. alignment_output/runs curves_output")
        return save([os.path.join(ROOT, f) for f in a.folders], records)
    return restore(records)


if __name__ == "__main__":
    sys.exit(main())
