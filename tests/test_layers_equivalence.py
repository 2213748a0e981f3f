"""kerasrnn.layers == keras.layers: outputs, states and gradients after a weight copy.

The cases and the comparison live in `kerasrnn.verify` (the same runner as
`kerasrnn verify`); this file runs them under pytest and checks the runner
itself can fail.
"""

import math

import numpy as np
import pytest
from click.testing import CliRunner

from kerasrnn import verify
from kerasrnn.layers import fused
from kerasrnn.commands.verify import verify_command
from kerasrnn.verify import TOLERANCE, keras_cases, run_keras_case

# Every option variant in seq+state and inference, every scenario for each layer's
# default variant (the fused loop wherever it applies, split in two in the graph
# scenarios), plus every variant under masks and in Bidirectional+mask, and the no-bias
# and ``fused=False`` variants (Keras' loop with our cells) where the fused loop could
# run: initial_state, stateful, XLA, Bidirectional, go_backwards.
_CROSS = {"mask-middle", "bidirectional+mask"}
_FUSED_SCENARIOS = {"initial_state", "stateful", "xla", "bidirectional", "go_backwards"}
CASES = keras_cases(quick=True) + [
    case for case in keras_cases()
    if case not in keras_cases(quick=True) and (
        (case.scenario in _CROSS and "fused" not in case.options)
        or (case.scenario in _FUSED_SCENARIOS
            and ("fused" in case.options or case.options.get("use_bias") is False))
    )
]


def test_case_set_covers_every_variant_and_scenario():
    for layer, variants in verify.VARIANTS.items():
        assert {c.variant for c in CASES if c.layer == layer} == {v for v, _ in variants}
        assert {c.scenario for c in CASES if c.layer == layer} == set(verify.SCENARIOS)
    assert len({c.id for c in CASES}) == len(CASES)
    fused = {(c.layer, c.scenario) for c in CASES if verify.expected_path(c) == "fused"}
    for layer in ("LSTM", "GRU", "SimpleRNN"):
        assert {s for lay, s in fused if lay == layer} >= _FUSED_SCENARIOS | {"seq+state", "inference"}
    no_bias_fused = {(c.layer, c.scenario) for c in CASES
                     if c.options.get("use_bias") is False and verify.expected_path(c) == "fused"}
    for layer in ("LSTM", "GRU", "SimpleRNN"):
        assert {s for lay, s in no_bias_fused if lay == layer} >= _FUSED_SCENARIOS


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_builtin(case):
    row = run_keras_case(case)
    assert row["against"] == "keras"
    for key in ("max_out", "max_state", "max_grad"):
        assert row[key] <= TOLERANCE, row
    # The loop that ran is the one that had to: "fused" wherever the fused path applies.
    assert row["path"] == verify.expected_path(case), row
    if case.scenario in verify.GRAPH_SCENARIOS and row["path"] == "fused" and fused._usable_cores() >= 2:
        assert row["parts"] == fused.BATCH_PARTS == 2, row  # the batch ran as two concurrent loops
    assert row["ok"], row


def test_expected_paths_are_fused_where_the_issue_requires():
    by_id = {c.id: verify.expected_path(c) for c in keras_cases()}
    for variant in ("GRU[reset_after=True]", "GRU[reset_after=False no-bias]", "SimpleRNN[tanh]",
                    "SimpleRNN[relu no-bias]", "LSTM[default]", "LSTM[no-bias]"):
        for scenario in ("initial_state", "stateful", "xla", "bidirectional", "seq+state", "inference",
                         "dropout(inference)", "graph", "graph(inference)"):
            assert by_id[f"{variant}-{scenario}"] == "fused", (variant, scenario)
    for variant in ("LSTM[default fused=False]", "GRU[reset_after=True fused=False]", "SimpleRNN[tanh fused=False]"):
        assert by_id[f"{variant}-seq+state"] == by_id[f"{variant}-inference"] == "loop"  # opted out
    assert by_id["LSTM[hard_sigmoid]-seq+state"] == "loop"                  # not a fused activation
    assert by_id["LSTM[default]-mask-end"] == "loop"
    assert by_id["LSTM[default]-dropout(training)"] == "loop"
    assert by_id["LSTM[default]-rnn(cell)"] is None


def test_runner_fails_a_case_whose_fused_path_silently_fell_back(monkeypatch):
    from kerasrnn.layers.gru import GRUCell

    monkeypatch.setattr(GRUCell, "fused_blocker", lambda self: "pretend unsupported")
    case = next(c for c in keras_cases() if c.id == "GRU[reset_after=True]-seq+state")
    row = run_keras_case(case)
    assert row["max_out"] <= TOLERANCE and row["path"] == "loop" and not row["ok"]


def test_runner_detects_a_difference(monkeypatch):
    """The runner must fail when ours differs: perturb our LSTM cell by 1e-4."""
    from kerasrnn.layers.lstm import LSTMCell

    real_call = LSTMCell.call

    def perturbed(self, inputs, states, training=False):
        h, (h2, c) = real_call(self, inputs, states, training=training)
        return h + 1e-4, [h2 + 1e-4, c]

    monkeypatch.setattr(LSTMCell, "call", perturbed)
    # (a fused=False case runs the cell step by step; the default one takes the fused loop)
    case = next(c for c in keras_cases(quick=True) if c.id == "LSTM[default fused=False]-inference")
    row = run_keras_case(case)
    assert not row["ok"]
    assert row["max_out"] > TOLERANCE and row["max_state"] > TOLERANCE


def test_max_diff_handles_mismatches():
    a = [np.zeros((2, 3), "float32")]
    assert verify._max_diff(a, [np.full((2, 3), 2e-5, "float32")]) == pytest.approx(2e-5)
    assert verify._max_diff(a, [np.zeros((3, 2), "float32")]) == math.inf
    assert verify._max_diff(a, []) == math.inf
    assert verify._max_diff([None], [a[0]]) == math.inf
    assert verify._max_diff(a, [np.full((2, 3), np.nan, "float32")]) == math.inf


def _fake_rows(ok=True):
    return [
        {"layer": "LSTM", "options": "default · seq+state", "max_out": 0.0, "max_state": 0.0,
         "max_grad": 1.2e-7, "against": "keras", "ok": True, "id": "LSTM[default]-seq+state"},
        {"layer": "GRU", "options": "no-bias · unroll", "max_out": 3e-4 if not ok else 1e-8,
         "max_state": 0.0, "max_grad": 0.0, "against": "keras", "ok": ok, "id": "GRU[no-bias]-unroll"},
    ]


def test_verify_command_prints_table_and_exit_code(monkeypatch):
    torch_row = {"layer": "nn.LSTM", "options": "proj_size=3", "max_out": 1e-7,
                 "max_state": 1e-7, "max_grad": None, "against": "torch", "ok": True}
    monkeypatch.setattr(verify, "keras_verify_cases", lambda quick=False: _fake_rows())
    monkeypatch.setattr(verify, "torch_rows", lambda quick=False: ([torch_row], None))
    result = CliRunner().invoke(verify_command, [])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:2] == ["layer", "options"] and "vs" in lines[0]
    assert any(line.startswith("nn.LSTM") and "torch" in line for line in lines)
    assert "3/3 cases within 1e-05" in result.output
    # columns are aligned: the "ok" column starts at the same offset in every data row
    data = [line for line in lines[2:5]]
    assert len({line.rindex(" ok") for line in data}) == 1

    monkeypatch.setattr(verify, "keras_verify_cases", lambda quick=False: _fake_rows(ok=False))
    result = CliRunner().invoke(verify_command, ["--quick"])
    assert result.exit_code == 1
    assert "FAIL" in result.output and "GRU[no-bias]-unroll" in result.output


def test_verify_command_json(monkeypatch):
    import json

    monkeypatch.setattr(verify, "keras_verify_cases", lambda quick=False: _fake_rows())
    monkeypatch.setattr(verify, "torch_rows", lambda quick=False: ([], "torch rows skipped"))
    result = CliRunner().invoke(verify_command, ["--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["ok"] is True and payload["tolerance"] == TOLERANCE
    assert [row["layer"] for row in payload["cases"]] == ["LSTM", "GRU"]
    assert payload["notes"] == ["torch rows skipped"]


def test_runner_detects_a_difference_in_the_fused_loop(monkeypatch):
    """...and when the fused loop differs: perturb the LSTM kernel it is handed by 1e-3."""
    from kerasrnn.layers import lstm as lstm_module

    real = lstm_module.lstm_sequence

    def perturbed(x, kernel, *args, **kwargs):
        return real(x, kernel + 1e-3, *args, **kwargs)

    monkeypatch.setattr(lstm_module, "lstm_sequence", perturbed)
    case = next(c for c in keras_cases(quick=True) if c.id == "LSTM[default]-seq+state")
    row = run_keras_case(case)
    assert row["path"] == "fused" and not row["ok"] and row["max_out"] > TOLERANCE
