"""Experiment report tables (tools/demo.py's results.md)."""
from maskrcnn_benchmark.engine.report import group_table, results_table


def _res(mr50, r50=0.5, head=0.4):
    return {"metrics": {"mR@50": mr50, "R@50": r50}, "groups": {"head": {"mR@100": head}}}


def test_table_means_std_and_bold_best():
    rows = {"Motifs": {"predcls": [_res(0.10), _res(0.12), _res(0.14)]},
            "Align-Motifs": {"predcls": [_res(0.20)]}}
    table = results_table(rows, "mR", ks=(50,), modes=("predcls",)).splitlines()
    assert table[0] == "| Method | PredCls mR@50 |"
    assert table[2] == "| Motifs | 12.0 ± 2.0 |"  # sample std of 10, 12, 14
    assert table[3] == "| Align-Motifs | **20.0** |"


def test_missing_values_and_modes_are_dashes_or_dropped():
    rows = {"A": {"predcls": [_res(None)]}, "B": {"predcls": [_res(0.3)]}}
    table = results_table(rows, "mR", ks=(50,))
    assert "SGCls" not in table and "| A | - |" in table and "**30.0**" in table
    assert "| A | 40.0 | - | - |" in group_table({"A": {"predcls": [_res(0.1)]}}, modes=("predcls",))
