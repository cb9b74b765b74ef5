"""Two relation trainings sharing a detector cache on disk (MODEL.DETECTOR_CACHE_DIR), as the
demo's runs do: the second reads the first one's entries, and both end with the weights of a run
without any cache (tools/relation_train_net.py on tiny SynthVG, CPU, one thread)."""
import os

import torch

from maskrcnn_benchmark.config import load_config
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.modeling.detector.detector_cache import MARKER
from maskrcnn_benchmark.utils.checkpoint import read_checkpoint


def test_runs_sharing_a_disk_cache_train_as_a_run_without_one(tiny, tiny_synthvg, load_tool, in_process_tool_runs,
                                                               tmp_path):
    torch.manual_seed(0)  # a random frozen detector: only its weights matter here
    detector = build_detection_model(load_config(None, tiny.detector_opts(tiny_synthvg, str(tmp_path / "d"))),
                                     load_pretrained=False)
    torch.save({"model": detector.state_dict()}, tmp_path / "detector.pth")
    cache = tmp_path / "cache"

    def opts(name, cache_opts):
        return ["--skip-test", *tiny.relation_opts(tiny_synthvg, str(tmp_path / name), str(tmp_path / "detector.pth"),
                                                     max_iter=4), *cache_opts]

    tool = load_tool("relation_train_net")
    disk = ["MODEL.DETECTOR_CACHE_MB", "16", "MODEL.DETECTOR_CACHE_DIR", str(cache)]
    with in_process_tool_runs():
        assert tool.main(opts("plain", ["MODEL.DETECTOR_CACHE_MB", "0"])) == 0
        assert tool.main(opts("first", disk)) == 0
        assert tool.main(opts("second", disk)) == 0
    (sig,) = os.listdir(cache)
    entries = [n for n in os.listdir(cache / sig) if n != MARKER]
    assert entries and all(n.endswith(".pt") for n in entries)  # train and val images, no temporary file
    assert "detector cache on disk: " in (tmp_path / "first" / "log.txt").read_text()
    assert f"({len(entries)} entries," in (tmp_path / "second" / "log.txt").read_text()  # found the first's
    plain = read_checkpoint(str(tmp_path / "plain" / "model_final.pth"))["model"]
    for name in ("first", "second"):
        weights = read_checkpoint(str(tmp_path / name / "model_final.pth"))["model"]
        for k, v in plain.items():
            torch.testing.assert_close(weights[k], v, rtol=1e-5, atol=1e-6, msg=lambda m, k=k: f"{name} {k}: {m}")
