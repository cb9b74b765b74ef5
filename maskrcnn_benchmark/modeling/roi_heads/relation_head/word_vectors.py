"""GloVe initialisation of the Motifs class embeddings (SGB's ``obj_edge_vectors``), offline.

``GLOVE_DIR/glove.6B.<EMBED_DIM>d.txt`` (Stanford's GloVe 6B file) or SGB's cache of it,
``glove.6B.<EMBED_DIM>d.pt`` (``(word -> row, FloatTensor[V, D], D)``), is read once per process;
the text file is cached as that ``.pt`` beside it (SGB's format, so SGB's cache works here and
ours there). Nothing is downloaded: without the file the embeddings start random, as before.
"""
from __future__ import annotations

import logging
import os
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from maskrcnn_benchmark.config import ConfigError

logger = logging.getLogger("maskrcnn_benchmark.modeling")

GLOVE_URL = "https://nlp.stanford.edu/data/glove.6B.zip"
WordVectors = Tuple[Dict[str, int], Tensor]
_CACHE: Dict[str, Optional[WordVectors]] = {}


def glove_paths(glove_dir: str, dim: int) -> Tuple[str, str]:
    """(``.pt`` cache, ``.txt`` file) that SGB's ``load_word_vectors`` looks for."""
    stem = os.path.join(glove_dir, f"glove.6B.{dim}d")
    return stem + ".pt", stem + ".txt"


def _parse_text(path: str) -> WordVectors:
    """GloVe text (``word v1 ... vD`` per line) -> (word -> row, FloatTensor[V, D])."""
    words, rows, chunks = [], [], []
    with open(path, "rb") as f:
        for line in f:
            word, _, rest = line.rstrip(b"\r\n").partition(b" ")
            try:
                words.append(word.decode("utf-8"))
            except UnicodeDecodeError:
                continue  # SGB skips non-UTF-8 tokens too
            rows.append(rest)
            if len(rows) == 20000:
                chunks.append(_to_array(rows, path, len(words) - len(rows) + 1))
                rows = []
    if rows:
        chunks.append(_to_array(rows, path, len(words) - len(rows) + 1))
    widths = {c.shape[1] for c in chunks}
    if not chunks or len(widths) != 1:
        raise ConfigError(f"{path} is not a GloVe text file (one word and its numbers per line, "
                          f"all lines of one width); re-extract it from {GLOVE_URL}")
    return {w: i for i, w in enumerate(words)}, torch.from_numpy(np.concatenate(chunks))


def _to_array(rows: Sequence[bytes], path: str, first_line: int) -> np.ndarray:
    """Rows of numbers (bytes) -> float32[len(rows), width]; a ragged or non-numeric row raises."""
    width = len(rows[0].split())
    try:
        flat = np.array(b" ".join(rows).split(), dtype=np.float32)
    except ValueError:
        flat = np.zeros(0, np.float32)
    if width == 0 or flat.size != width * len(rows):
        bad = next((i for i, r in enumerate(rows) if len(r.split()) != width), 0)
        raise ConfigError(f"{path}: line {first_line + bad} is not a word followed by {width or 'its'} "
                          f"numbers; the file is broken (re-extract it from {GLOVE_URL})")
    return flat.reshape(len(rows), width)


def _write_cache(vectors: WordVectors, path: str) -> None:
    """SGB's ``.pt`` layout, written to a temporary file and renamed; never over an existing file."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        torch.save((vectors[0], vectors[1], int(vectors[1].shape[1])), tmp)
        if not os.path.exists(path):
            os.replace(tmp, path)
            logger.info("GloVe: cached as %s", path)
    except OSError as e:  # a read-only GLOVE_DIR: no cache, the text is read again next time
        logger.info("GloVe: could not write the cache %s (%s)", path, e)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_word_vectors(glove_dir: str, dim: int) -> Optional[WordVectors]:
    """(word -> row, FloatTensor[V, dim]) from GLOVE_DIR, or None (one log line) when absent.

    Raises ConfigError when the vectors are not ``dim`` wide (EMBED_DIM) or the file is broken.
    """
    pt, txt = glove_paths(glove_dir, dim)
    key = os.path.abspath(pt)
    if key in _CACHE:
        return _CACHE[key]
    vectors = None
    if os.path.isfile(pt):
        try:
            loaded = torch.load(pt, map_location="cpu", weights_only=True)
            vectors = (dict(loaded[0]), loaded[1].float())
        except Exception as e:  # noqa: BLE001 - any unreadable cache is the same user error
            raise ConfigError(f"cannot read the GloVe cache {pt} ({e}); delete it (it is rebuilt "
                              f"from {os.path.basename(txt)}) or set GLOVE_DIR") from e
        source = pt
    elif os.path.isfile(txt):
        logger.info("GloVe: reading %s (once; cached as %s)", txt, os.path.basename(pt))
        vectors = _parse_text(txt)
        source = txt
    else:
        logger.warning("Motifs class embeddings: random initialisation (no %s or %s; SGB starts them "
                       "from GloVe: put glove.6B.%dd.txt from %s in GLOVE_DIR=%r, EMBED_DIM being "
                       "50, 100, 200 or 300)", os.path.basename(txt), os.path.basename(pt), dim,
                       GLOVE_URL, glove_dir)
    if vectors is not None:
        width = int(vectors[1].shape[1])
        if width != dim or vectors[1].shape[0] != len(vectors[0]):
            raise ConfigError(f"{source} holds {width}-d word vectors but MODEL.ROI_RELATION_HEAD."
                              f"EMBED_DIM is {dim}: set EMBED_DIM {width} or give GLOVE_DIR a "
                              f"glove.6B.{dim}d file")
        if source == txt:
            _write_cache(vectors, pt)
    _CACHE[key] = vectors
    return vectors


def obj_edge_vectors(names: Sequence[str], vectors: WordVectors) -> Tuple[Tensor, int]:
    """SGB's rule for each class name: its GloVe vector; else that of its longest word (the first
    of equal length); else N(0, 1). -> (FloatTensor[len(names), D], number found)."""
    index, table = vectors
    out = torch.randn(len(names), table.shape[1])
    found = 0
    for i, name in enumerate(names):
        row = index.get(name)
        if row is None:
            row = index.get(max(name.split(" "), key=len))
        if row is not None:
            out[i] = table[row]
            found += 1
    return out, found


def class_embedding_vectors(glove_dir: str, obj_classes: Sequence[str], dim: int
                            ) -> Optional[Tuple[Tensor, Tensor]]:
    """Initial (obj_embed1 / obj_embed2 [C, dim], decoder [C + 1, dim]: "start" first) weights,
    or None when GLOVE_DIR has no GloVe file of that width."""
    if not glove_dir:
        return None
    vectors = load_word_vectors(glove_dir, dim)
    if vectors is None:
        return None
    classes, found = obj_edge_vectors(list(obj_classes), vectors)
    decoder, _ = obj_edge_vectors(["start"] + list(obj_classes), vectors)
    logger.info("Motifs class embeddings: GloVe %dd for %d of %d class names (the others random)",
                dim, found, len(obj_classes))
    return classes, decoder
