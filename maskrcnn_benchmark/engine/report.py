"""Experiment reports: the paper's Table 2 layout in Markdown, per-predicate recall and training
curves as PNG, and qualitative scene graphs (the paper's Figure 4). Used by ``tools/demo.py``
and ``tools/reproduce.py``; everything here reads files the train/test tools already wrote."""
from __future__ import annotations

import json
import os
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

MODES = ("predcls", "sgcls", "sgdet")
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODE_NAMES = {"predcls": "PredCls", "sgcls": "SGCls", "sgdet": "SGDet"}


def load_results(run_dir: str, dataset: str) -> Optional[dict]:
    """The evaluator's ``results.json`` of ``run_dir`` on ``dataset``, or None if absent."""
    path = os.path.join(run_dir, "inference", dataset, "results.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _cell(values: Sequence[Optional[float]], bold: bool = False) -> str:
    vals = [100.0 * v for v in values if v is not None]
    if not vals:
        return "-"
    text = f"{np.mean(vals):.1f}" if len(vals) == 1 else f"{np.mean(vals):.1f} ± {np.std(vals, ddof=1):.1f}"
    return f"**{text}**" if bold else text


def results_table(rows: Mapping[str, Mapping[str, Sequence[dict]]], metric: str = "mR",
                  ks: Sequence[int] = (20, 50, 100), modes: Sequence[str] = MODES) -> str:
    """Markdown table in the layout of the paper's Table 2.

    Args:
        rows: method name -> mode -> list of results dicts (one per seed; several give mean ± std,
            the sample standard deviation).
        metric: "mR" (Table 2) or "R", "ngR", "ng-mR", "zR".
    The best mean of each column is bold.
    """
    modes = [m for m in modes if any(rows[r].get(m) for r in rows)]
    cols = [(m, k) for m in modes for k in ks]
    means = {}
    for name, per_mode in rows.items():
        for m, k in cols:
            vals = [r["metrics"].get(f"{metric}@{k}") for r in per_mode.get(m, [])]
            vals = [v for v in vals if v is not None]
            means[name, m, k] = np.mean(vals) if vals else None
    best = {}
    for m, k in cols:
        present = [means[n, m, k] for n in rows if means[n, m, k] is not None]
        best[m, k] = max(present) if present else None
    head = "| Method | " + " | ".join(f"{MODE_NAMES[m]} {metric}@{k}" for m, k in cols) + " |"
    lines = [head, "|---|" + "---|" * len(cols)]
    for name, per_mode in rows.items():
        cells = []
        for m, k in cols:
            vals = [r["metrics"].get(f"{metric}@{k}") for r in per_mode.get(m, [])]
            is_best = bool(means[name, m, k]) and len(rows) > 1 and means[name, m, k] == best[m, k]
            cells.append(_cell(vals, bold=is_best))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def group_table(rows: Mapping[str, Mapping[str, Sequence[dict]]], k: int = 100,
                modes: Sequence[str] = MODES) -> str:
    """Markdown table of mR@k over the HEAD / BODY / TAIL predicate groups, per protocol."""
    modes = [m for m in modes if any(rows[r].get(m) for r in rows)]
    groups = ("head", "body", "tail")
    head = "| Method | " + " | ".join(f"{MODE_NAMES[m]} {g.upper()}" for m in modes for g in groups) + " |"
    lines = [head, "|---|" + "---|" * (len(modes) * len(groups))]
    for name, per_mode in rows.items():
        cells = [_cell([(r.get("groups") or {}).get(g, {}).get(f"mR@{k}") for r in per_mode.get(m, [])])
                 for m in modes for g in groups]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_per_predicate(results: Mapping[str, dict], predicate_counts: Mapping[str, int],
                       groups: Mapping[str, Sequence[str]], path: str, k: int = 100,
                       title: str = "") -> None:
    """Bar chart of per-predicate R@k for each model, predicates sorted by training frequency
    (most frequent first), HEAD / BODY / TAIL shaded."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(predicate_counts, key=lambda p: -predicate_counts[p])
    group_of = {p: g for g, members in groups.items() for p in members}
    width = 0.8 / max(len(results), 1)
    fig, ax = plt.subplots(figsize=(max(8, 0.45 * len(names)), 4.5))
    shades = {"head": "#e8e8e8", "body": "#f5f5f5", "tail": "#ffffff"}
    for i, p in enumerate(names):
        ax.axvspan(i - 0.5, i + 0.5, color=shades.get(group_of.get(p, ""), "white"), zorder=0)
    for j, (model, res) in enumerate(results.items()):
        per = res["per_predicate"].get(f"R@{k}", {})
        vals = [100.0 * (per.get(p) or 0.0) for p in names]
        ax.bar(np.arange(len(names)) + (j - (len(results) - 1) / 2) * width, vals, width, label=model, zorder=2)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([f"{p} [{group_of.get(p, '?')[:1].upper()}]" for p in names], rotation=75,
                       ha="right", fontsize=8)
    ax.set_ylabel(f"R@{k} (%)")
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_title(title or f"Per-predicate R@{k}, predicates by training frequency (H/B/T = head/body/tail)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def read_scalars(run_dir: str) -> Dict[str, List[tuple]]:
    """TensorBoard scalars of ``run_dir/tensorboard``: tag -> [(step, value), ...]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = os.path.join(run_dir, "tensorboard")
    if not os.path.isdir(tb):
        return {}
    acc = EventAccumulator(tb, size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def plot_training_curves(runs: Mapping[str, str], path: str,
                         tags: Sequence[str] = ("loss_rel", "loss_refine_obj", "loss_align", "val/mR@50")) -> None:
    """One panel per tag (losses and val mR@50 over iterations), one line per run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scalars = {name: read_scalars(d) for name, d in runs.items()}
    tags = [t for t in tags if any(t in s for s in scalars.values())]
    if not tags:
        return
    fig, axes = plt.subplots(1, len(tags), figsize=(4.2 * len(tags), 3.4), squeeze=False)
    for ax, tag in zip(axes[0], tags):
        for color, (name, s) in enumerate(scalars.items()):  # one colour per run in every panel
            if tag in s:
                steps, vals = zip(*s[tag])
                scale = 100.0 if tag.startswith("val/") else 1.0
                ax.plot(steps, [scale * v for v in vals], label=name, color=f"C{color}",
                        marker="o" if tag.startswith("val/") else None, markersize=3)
        ax.set_title(tag + (" (%)" if tag.startswith("val/") else ""))
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _triplets(pred: Mapping[str, np.ndarray], top: int) -> List[tuple]:
    """(subject, object, predicate, score) of the top pairs, each with its best foreground predicate."""
    out = []
    for (s, o), scores in zip(pred["rel_pairs"][:top], pred["rel_scores"][:top]):
        p = int(np.argmax(scores[1:]) + 1)
        out.append((int(s), int(o), p, float(scores[p] * pred["scores"][s] * pred["scores"][o])))
    return out


def draw_examples(dataset, predictions: Mapping[str, Sequence[dict]], indices: Sequence[int],
                  out_dir: str, positions: Sequence[int], top: int = 6) -> List[str]:
    """For each chosen test image: ground truth next to each model's top relations (correct ones
    green: same classes and predicate, boxes at IoU >= 0.5 with a GT triplet), as PNG files.

    ``predictions[model]`` is the list of per-image prediction dicts aligned with ``indices``;
    ``positions`` picks entries of that list.
    """
    from PIL import Image

    from maskrcnn_benchmark.data.datasets.evaluation.vg import box_iou_sgb
    from maskrcnn_benchmark.utils.visualize import draw_scene_graph, side_by_side

    os.makedirs(out_dir, exist_ok=True)
    classes, predicates = dataset.ind_to_classes, dataset.ind_to_predicates
    paths = []
    for pos in positions:
        idx = indices[pos]
        gt = dataset.get_groundtruth(idx)
        image = Image.open(dataset.image_path(idx)).convert("RGB")
        gt_labels = [classes[c] for c in gt["labels"]]
        panels = [draw_scene_graph(image, gt["boxes"], gt_labels,
                                   [(s, o, predicates[p]) for s, o, p in gt["relations"]][:top],
                                   title="ground truth")]
        for model, preds in predictions.items():
            pred = preds[pos]
            iou = box_iou_sgb(pred["boxes"], gt["boxes"]) if len(gt["boxes"]) and len(pred["boxes"]) else None
            rels = []
            for s, o, p, score in _triplets(pred, top):
                hit = False
                if iou is not None:
                    for gs, go, gp in gt["relations"]:
                        hit |= bool(gp == p and gt["labels"][gs] == pred["labels"][s] and
                                    gt["labels"][go] == pred["labels"][o] and iou[s, gs] >= 0.5 and
                                    iou[o, go] >= 0.5)
                rels.append((s, o, predicates[p], score, hit))
            panels.append(draw_scene_graph(image, pred["boxes"], [classes[c] for c in pred["labels"]], rels,
                                           title=model))
        path = os.path.join(out_dir, f"{dataset.get_img_info(idx)['image_id']}.png")
        side_by_side(panels).save(path)
        paths.append(path)
    return paths


def _git_commit(root: str) -> str:
    import subprocess
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_report(out: str, runs: Mapping[tuple, Sequence[str]], data_dir: str, test_set: str,
                 timings: Mapping[str, float], command: str, num_examples: int = 4, setup: str = "") -> str:
    """Write ``out/results.md`` and the pictures for runs ``{(method, mode): [run_dir per seed]}``; print the
    table and where the files are last. ``setup`` (Markdown) says which configs and detector ran.
    Returns the Markdown text."""
    import datetime

    from maskrcnn_benchmark.data.datasets.evaluation.vg import load_predictions

    rows: Dict[str, Dict[str, List[dict]]] = {}
    for (name, mode), run_dirs in runs.items():
        found = [r for r in (load_results(d, test_set) for d in run_dirs) if r is not None]
        if found:
            rows.setdefault(name, {})[mode] = found
    order = ["Frequency prior", "Motifs", "Align-Motifs"]
    rows = {n: rows[n] for n in order + [n for n in rows if n not in order] if n in rows}
    main_rows = {n: rows[n] for n in order if n in rows}
    ablation = {n: {"predcls": rows[n]["predcls"]} for n in ("Motifs", *[n for n in rows if n not in order],
                                                               "Align-Motifs") if "predcls" in rows.get(n, {})}
    seeds = max(len(v) for per_mode in rows.values() for v in per_mode.values())
    with open(os.path.join(data_dir, "VG-SGG-dicts-with-attri.json")) as f:
        counts = json.load(f)["predicate_count"]
    groups_file = os.path.join(data_dir, "predicate_groups.json")
    groups = {}
    if os.path.isfile(groups_file):
        with open(groups_file) as f:
            groups = {g: v["names"] for g, v in json.load(f).items() if isinstance(v, dict) and "names" in v}

    pictures = []
    predcls = {n: rows[n]["predcls"][0] for n in ("Motifs", "Align-Motifs") if "predcls" in rows.get(n, {})}
    if predcls:
        plot_per_predicate(predcls, counts, groups, os.path.join(out, "per_predicate_recall.png"),
                           title="PredCls per-predicate R@100 on SynthVG test (training frequency order; H/B/T groups)")
        pictures.append("per_predicate_recall.png")
    curve_runs = {f"{n} {MODE_NAMES[m]}": d[0] for (n, m), d in runs.items() if n in ("Motifs", "Align-Motifs")}
    plot_training_curves(curve_runs, os.path.join(out, "training_curves.png"))
    if os.path.isfile(os.path.join(out, "training_curves.png")):
        pictures.append("training_curves.png")
    pred_files = {n: os.path.join(runs[n, "predcls"][0], "inference", test_set, "predictions.pt")
                  for n in ("Motifs", "Align-Motifs") if (n, "predcls") in runs}
    if pred_files and all(os.path.isfile(p) for p in pred_files.values()):
        from maskrcnn_benchmark.config import load_config
        from maskrcnn_benchmark.data.build import build_dataset

        loaded = {n: load_predictions(p) for n, p in pred_files.items()}
        info = next(iter(loaded.values()))[1]
        cfg = load_config(os.path.join(runs["Motifs", "predcls"][0], "config.yaml"),
                          ["DATASETS.DATA_DIR", os.path.dirname(data_dir)])
        ds = build_dataset(cfg, "test", is_train=False)
        indices = [int(i) for i in info["indices"]]
        chosen = [k for k, i in enumerate(indices) if len(ds.get_groundtruth(i)["relations"]) >= 3][:num_examples]
        draw_examples(ds, {n: v[0] for n, v in loaded.items()}, indices, os.path.join(out, "scene_graphs"), chosen)
        pictures.append("scene_graphs/")

    table = results_table(main_rows, "mR")
    runs_text = "one seed" if seeds == 1 else f"{seeds} seeds (SEED 0..{seeds - 1}), mean ± sample std"
    sections = [
        "# SynthVG results: Motifs vs Align-Motifs",
        f"Command: `{command}` at commit `{_git_commit(_REPO_ROOT)}`, "
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}. Test split `{test_set}`; one model per protocol, {runs_text}. "
        "Numbers are recalls in %, computed by the SGB-exact evaluator; the best mean per column is bold.",
        *([setup] if setup else []),
        "## mR@K (the layout of the paper's Table 2)", table,
        "## R@K (graph constraint)", results_table(main_rows, "R"),
        "## No-graph-constraint mR@K", results_table(main_rows, "ng-mR"),
        "## mR@100 over HEAD / BODY / TAIL predicates", group_table(main_rows)]
    if len(ablation) > 2:
        sections += ["## Ablation (the paper's Table 3), PredCls: SA = supervised alignment (CE to labels), "
                     "SSA = self-supervised (KL), PH / UPH = tied / untied projection head",
                     results_table(ablation, "mR", ks=(50, 100), modes=("predcls",)),
                     results_table(ablation, "R", ks=(50, 100), modes=("predcls",))]
    text = "\n\n".join(sections + [
        "## Wall time per stage (s)",
        "\n".join(f"- {k}: {v:.0f}" for k, v in timings.items()),
        "Pictures: " + ", ".join(pictures) if pictures else "",
    ])
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(text + "\n")
    print("\n" + table)
    print(f"\nWrote {os.path.join(out, 'results.md')} and {', '.join(pictures) or 'no pictures'} in {out}")
    print(f"TensorBoard: .venv/bin/tensorboard --logdir {out}")
    return text
