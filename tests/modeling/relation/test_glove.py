"""GloVe class embeddings (SGB's obj_edge_vectors) from a small GloVe-format file written here."""
import logging

import pytest
import torch

from maskrcnn_benchmark.config import ConfigError
from maskrcnn_benchmark.modeling.roi_heads.relation_head import MotifPredictor, word_vectors
from maskrcnn_benchmark.modeling.roi_heads.relation_head.word_vectors import load_word_vectors

# NUM_OBJ = 7 classes of the tiny config; "zebra" and "__background__" are not in the file
CLASSES = ["__background__", "cat", "traffic light", "red hat", "dog", "zebra", "bus"]
WORDS = ["start", "cat", "traffic", "light", "red", "hat", "dog", "bus", "the"]


def write_glove(folder, dim=8, width=None, words=WORDS):
    g = torch.Generator().manual_seed(0)
    table = {w: torch.randn(width or dim, generator=g) for w in words}
    lines = [w + " " + " ".join(f"{v:.6f}" for v in vec.tolist()) for w, vec in table.items()]
    (folder / f"glove.6B.{dim}d.txt").write_text("\n".join(lines) + "\n")
    return {w: torch.tensor([float(f"{v:.6f}") for v in vec.tolist()]) for w, vec in table.items()}


def build(cfg, glove_dir, mode="sgcls"):
    cfg.GLOVE_DIR = str(glove_dir)
    stats = {"pred_dist": torch.zeros(7, 7, 5), "obj_classes": CLASSES}
    return MotifPredictor.from_config(cfg, obj_dim=16, union_dim=16, statistics=stats).context_layer


def test_embeddings_start_from_glove_as_sgb(make_cfg, tmp_path):
    glove = write_glove(tmp_path)
    ctx = build(make_cfg("sgcls"), tmp_path)
    # SGB: the name's vector; else its longest word's (the first of equal length); else N(0, 1)
    expected = {1: "cat", 2: "traffic", 3: "red", 4: "dog", 6: "bus"}
    for emb in (ctx.obj_embed1, ctx.obj_embed2):
        for row, word in expected.items():
            torch.testing.assert_close(emb.weight[row], glove[word])
        assert not any(torch.allclose(emb.weight[5], v) for v in glove.values())  # zebra: random
    dec = ctx.decoder_rnn.obj_embed.weight  # index 0: the start token, then the classes
    torch.testing.assert_close(dec[0], glove["start"])
    for row, word in expected.items():
        torch.testing.assert_close(dec[row + 1], glove[word])
    # the text file was cached in SGB's .pt layout beside it
    index, table, width = torch.load(tmp_path / "glove.6B.8d.pt", weights_only=True)
    assert width == 8 and table.shape == (len(WORDS), 8) and index["dog"] == WORDS.index("dog")


def test_cache_is_read_without_the_text_file(make_cfg, tmp_path, monkeypatch):
    glove = write_glove(tmp_path)
    assert load_word_vectors(str(tmp_path), 8) is load_word_vectors(str(tmp_path), 8)  # read once
    (tmp_path / "glove.6B.8d.txt").unlink()
    monkeypatch.setattr(word_vectors, "_CACHE", {})
    ctx = build(make_cfg("predcls"), tmp_path)
    torch.testing.assert_close(ctx.obj_embed1.weight[4], glove["dog"])


class Records(logging.Handler):
    """Records of one logger, whatever earlier tests did to propagation (setup_logger stops it)."""

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_absent_file_means_random_embeddings_and_one_log_line(make_cfg, tmp_path):
    cfg = make_cfg("sgcls")
    torch.manual_seed(0)
    logger, records = logging.getLogger("maskrcnn_benchmark.modeling"), Records()
    logger.addHandler(records)
    try:
        a = build(cfg, tmp_path)
        build(cfg, tmp_path)
    finally:
        logger.removeHandler(records)
    lines = [m for m in records.messages if "class embeddings" in m]
    assert len(lines) == 1 and "random" in lines[0] and "glove.6B.8d.txt" in lines[0]
    assert "nlp.stanford.edu" in lines[0] and str(tmp_path) in lines[0]
    cfg.GLOVE_DIR = ""
    torch.manual_seed(0)  # the same random init as without any GLOVE_DIR
    b = MotifPredictor.from_config(cfg, obj_dim=16, union_dim=16).context_layer
    assert torch.equal(a.obj_embed1.weight, b.obj_embed1.weight)
    assert not list(tmp_path.iterdir())  # nothing downloaded or written


def test_width_mismatch_and_broken_file_are_clear_errors(make_cfg, tmp_path):
    write_glove(tmp_path, dim=8, width=6)
    with pytest.raises(ConfigError, match=r"glove.6B.8d.txt holds 6-d word vectors but "
                                          r"MODEL.ROI_RELATION_HEAD.EMBED_DIM is 8"):
        build(make_cfg("sgcls"), tmp_path)
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "glove.6B.8d.txt").write_text("cat 1 2 3 4 5 6 7 8\ndog 1 2 3\n")
    with pytest.raises(ConfigError, match="line 2 is not a word followed by 8 numbers"):
        load_word_vectors(str(bad), 8)
