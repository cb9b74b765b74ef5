"""benchmarks/gpu_check.sh at toy sizes on the CPU (GPU_CHECK_TINY=1): every step of the GPU
check (data, detector, Align-Motifs in the three protocols with their tests, the summary) runs."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_gpu_check_runs_at_tiny_sizes_on_the_cpu(tmp_path):
    out = tmp_path / "check"
    env = {**os.environ, "GPU_CHECK_TINY": "1", "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", os.path.join(ROOT, "benchmarks", "gpu_check.sh"), str(out)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()
            if line.startswith(("detector ", "align_"))}
    assert sorted(rows) == ["align_predcls", "align_sgcls", "align_sgdet", "detector"]
    assert all(float(r[1]) > 0 for r in rows.values())  # images/s
    assert "mAP@0.5" in " ".join(rows["detector"]) and "mR@50" in " ".join(rows["align_sgdet"])
    assert (out / "align_sgdet" / "inference" / "synthvg_test" / "results.json").is_file()


def test_gpu_check_never_deletes_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "mine.txt").write_text("user data")
    env = {**os.environ, "GPU_CHECK_TINY": "1", "PYTHON": sys.executable}
    proc = subprocess.run(["bash", os.path.join(ROOT, "benchmarks", "gpu_check.sh"), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "is not a gpu_check output folder" in proc.stderr
    assert (tmp_path / "mine.txt").read_text() == "user data"
