"""The tools' command line: SGB's ``--config-file FILE KEY VALUE ...`` with flags anywhere."""
from maskrcnn_benchmark.engine.defaults import default_argument_parser


def test_flags_after_the_overrides_are_flags():
    p = default_argument_parser("t")
    ns = p.parse_args(["--config-file", "a.yaml", "SOLVER.MAX_ITER", "10", "--skip-test",
                       "DATASETS.NUM_IM", "-1", "SOLVER.STEPS", "(3, 4)", "--no-resume"])
    assert ns.config_file == "a.yaml" and ns.skip_test and ns.no_resume
    assert ns.opts == ["SOLVER.MAX_ITER", "10", "DATASETS.NUM_IM", "-1", "SOLVER.STEPS", "(3, 4)"]


def test_plain_form():
    ns = default_argument_parser("t").parse_args(["--config-file", "b.yaml", "OUTPUT_DIR", "out"])
    assert (ns.config_file, ns.skip_test, ns.no_resume, ns.opts) == ("b.yaml", False, False, ["OUTPUT_DIR", "out"])
