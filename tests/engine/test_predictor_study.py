"""tools/predictor_study.py's table from the runs' results files (no training here)."""
import json
import os


def _results(folder, mr50, r50=0.5):
    os.makedirs(os.path.join(folder, "inference", "synthvg_test"))
    metrics = {"mR@20": mr50 - 0.1, "mR@50": mr50, "mR@100": mr50 + 0.05, "R@50": r50}
    with open(os.path.join(folder, "inference", "synthvg_test", "results.json"), "w") as f:
        json.dump({"metrics": metrics}, f)


def test_study_table_means_and_paired_differences(tmp_path, load_tool):
    study = load_tool("predictor_study")
    out = str(tmp_path)
    for seed, (plain, aligned) in enumerate([(0.40, 0.45), (0.50, 0.53)]):
        _results(study.run_dir(out, "vctree", False, "predcls", seed), plain)
        _results(study.run_dir(out, "vctree", True, "predcls", seed), aligned)
    _results(study.run_dir(out, "imp", False, "predcls", 0), 0.30)  # one seed only, no aligned run yet
    _results(os.path.join(out, "frequency_predcls"), 0.20)
    assert study.main(["--out", out, "--report-only", "--seeds", "2"]) == 0
    table = (tmp_path / "results.md").read_text()
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert "| VCTree | 2 | 35.0 ± 7.1 | 45.0 ± 7.1 | 50.0 ± 7.1 | 50.0 ± 0.0 | 2 | 49.0 ± 5.7 |" in rows["VCTree"]
    assert rows["VCTree"].endswith("| 4.0 ± 1.4 |")  # paired: +5 and +3 points
    assert rows["IMP"].startswith("| IMP | 1 | 20.0 | 30.0 |") and rows["IMP"].endswith("| 0 | - | - | - |")
    assert rows["Motifs"].startswith("| Motifs | 0 | - |") and "| Frequency prior | 1 | 10.0 | 20.0 |" in table
