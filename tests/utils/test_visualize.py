import numpy as np
from PIL import Image

from maskrcnn_benchmark.utils.visualize import draw_scene_graph, side_by_side


def test_draws_boxes_and_relation_lines():
    im = Image.new("RGB", (400, 300), (255, 255, 255))
    out = draw_scene_graph(im, np.array([[10, 10, 100, 100], [150, 50, 390, 290]]), ["a", "b"],
                           [(0, 1, "near", 0.5, True), (1, 0, "on", 0.2)], title="t")
    arr = np.asarray(out).astype(int)
    assert out.width == 400 and out.height > 300  # relation list below the picture
    title_h = (out.height - 300) // 4  # canvas = title line + picture + 2 relations + 1 margin line
    column = arr[:, 10]  # the left edge of box 0 runs down this column inside the picture
    assert (np.abs(column[title_h + 20:title_h + 90] - 255).sum(1) > 0).all()
    assert (arr[title_h + 300:] != 255).any()  # relation lines are written underneath


def test_small_images_are_upscaled_and_panels_concatenate():
    im = Image.new("RGB", (100, 80))
    a = draw_scene_graph(im, np.zeros((0, 4)), [], [], min_width=320)
    assert a.width == 320
    both = side_by_side([a, a], gap=8)
    assert both.size == (648, a.height)
