"""kerasrnn.interop: from_torch / to_torch against PyTorch's nn.RNN, nn.LSTM, nn.GRU."""

import numpy as np
import pytest
import torch

from kerasrnn.interop import compare_with_torch, from_torch, to_torch, torch_verify_cases
from kerasrnn.layers import RecurrentStack

TOL = 1e-5


def _check(diffs, grad=True):
    assert diffs["max_out"] <= TOL, diffs
    assert diffs["max_state"] <= TOL, diffs
    if grad:
        assert diffs["max_grad"] <= TOL, diffs


# -- the three examples of the seed notes, exactly as users will type them ----

def test_seed_example_rnn():
    torch.manual_seed(0)
    rnn = torch.nn.RNN(10, 20, 2)
    inp = torch.randn(5, 3, 10)
    h0 = torch.randn(2, 3, 20)
    output, hn = rnn(inp, h0)

    stack = from_torch(rnn)
    out, h_n = stack(inp.transpose(0, 1).numpy(), initial_state=h0.numpy())
    assert tuple(h_n.shape) == (2, 3, 20)
    np.testing.assert_allclose(out.numpy(), output.transpose(0, 1).detach().numpy(), atol=TOL)
    np.testing.assert_allclose(h_n.numpy(), hn.detach().numpy(), atol=TOL)


def test_seed_example_lstm():
    torch.manual_seed(0)
    rnn = torch.nn.LSTM(10, 20, 2)
    inp = torch.randn(5, 3, 10)
    h0 = torch.randn(2, 3, 20)
    c0 = torch.randn(2, 3, 20)
    output, (hn, cn) = rnn(inp, (h0, c0))

    stack = from_torch(rnn)
    out, (h_n, c_n) = stack(inp.transpose(0, 1).numpy(), initial_state=(h0.numpy(), c0.numpy()))
    np.testing.assert_allclose(out.numpy(), output.transpose(0, 1).detach().numpy(), atol=TOL)
    np.testing.assert_allclose(h_n.numpy(), hn.detach().numpy(), atol=TOL)
    np.testing.assert_allclose(c_n.numpy(), cn.detach().numpy(), atol=TOL)


def test_seed_example_gru():
    torch.manual_seed(0)
    rnn = torch.nn.GRU(10, 20, 2)
    inp = torch.randn(5, 3, 10)
    h0 = torch.randn(2, 3, 20)
    output, hn = rnn(inp, h0)

    stack = from_torch(rnn)
    out, h_n = stack(inp.transpose(0, 1).numpy(), initial_state=h0.numpy())
    np.testing.assert_allclose(out.numpy(), output.transpose(0, 1).detach().numpy(), atol=TOL)
    np.testing.assert_allclose(h_n.numpy(), hn.detach().numpy(), atol=TOL)


# -- configurations: outputs, final states and input gradients -----------------

CASES = [
    ("RNN", dict(num_layers=1)),
    ("RNN", dict(nonlinearity="relu", num_layers=2, batch_first=True)),
    ("RNN", dict(nonlinearity="relu", bidirectional=True, bias=False)),
    ("LSTM", dict(num_layers=1, batch_first=True)),
    ("LSTM", dict(proj_size=3)),
    ("LSTM", dict(num_layers=3, bidirectional=True, proj_size=4, batch_first=True)),
    ("LSTM", dict(num_layers=2, bias=False, bidirectional=True)),
    ("GRU", dict(num_layers=1)),
    ("GRU", dict(num_layers=3, bidirectional=True, batch_first=True)),
    ("GRU", dict(num_layers=2, bias=False)),
]


@pytest.mark.parametrize("kind,options", CASES, ids=[f"{k}-{o}" for k, o in CASES])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "h0"])
def test_matches_torch(kind, options, with_state):
    torch.manual_seed(1)
    module = getattr(torch.nn, kind)(6, 8, **options)
    batch, time = 2, 4
    shape = (batch, time, 6) if module.batch_first else (time, batch, 6)
    x = torch.randn(*shape).numpy()
    init = None
    if with_state:
        n = module.num_layers * (2 if module.bidirectional else 1)
        h0 = torch.randn(n, batch, getattr(module, "proj_size", 0) or 8).numpy()
        init = (h0, torch.randn(n, batch, 8).numpy()) if kind == "LSTM" else h0
    _check(compare_with_torch(module, x, init, grad=True))


def test_from_torch_copies_configuration():
    module = torch.nn.LSTM(5, 7, num_layers=2, bias=False, dropout=0.25,
                           bidirectional=True, proj_size=3)
    stack = from_torch(module, name="converted")
    assert isinstance(stack, RecurrentStack) and stack.built
    assert (stack.mode, stack.units, stack.num_layers, stack.bidirectional) == ("lstm", 7, 2, True)
    assert (stack.dropout, stack.proj_size, stack.use_bias, stack.name) == (0.25, 3, False, "converted")
    # Weight count: per sub-layer kernel, recurrent kernel, projection (no bias).
    assert len(stack.weights) == 4 * 3
    assert stack.rnns[1].cell.recurrent_kernel.shape == (3, 28)
    assert stack.rnns[2].cell.kernel.shape == (6, 28)  # layer 1 reads 2 * proj_size features


def test_from_torch_relu_mode_and_gru_reset_after():
    assert from_torch(torch.nn.RNN(3, 4, nonlinearity="relu")).mode == "rnn_relu"
    assert from_torch(torch.nn.RNN(3, 4)).mode == "rnn_tanh"
    gru = from_torch(torch.nn.GRU(3, 4))
    assert gru.rnns[0].cell.reset_after is True
    assert tuple(gru.rnns[0].cell.bias.shape) == (2, 12)


def test_from_torch_rejects_other_modules():
    with pytest.raises(TypeError, match="Linear"):
        from_torch(torch.nn.Linear(3, 4))


def test_compare_with_torch_refuses_inter_layer_dropout():
    # In training mode the two frameworks draw different dropout masks: a comparison would report
    # large, meaningless differences instead of failing clearly.
    x = np.ones((2, 3, 4), "float32")
    with pytest.raises(ValueError, match=r"dropout=0, got dropout=0.3"):
        compare_with_torch(torch.nn.RNN(4, 5, num_layers=2, dropout=0.3), x)
    # PyTorch ignores dropout on a one-layer module (it only warns), so that comparison is meaningful.
    with pytest.warns(UserWarning, match="dropout"):
        single = torch.nn.GRU(4, 5, dropout=0.3)
    _check(compare_with_torch(single, x))


def test_from_torch_masked_final_states_match_packed_sequences():
    torch.manual_seed(2)
    module = torch.nn.GRU(4, 6, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(3, 5, 4)
    lengths = torch.tensor([5, 3, 2])
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True)
    t_out, t_h = module(packed)
    t_out, _ = torch.nn.utils.rnn.pad_packed_sequence(t_out, batch_first=True, total_length=5)

    mask = np.arange(5)[None, :] < lengths.numpy()[:, None]
    out, h_n = from_torch(module)(x.numpy(), mask=mask)
    np.testing.assert_allclose(h_n.numpy(), t_h.detach().numpy(), atol=TOL)
    valid = mask[..., None]
    np.testing.assert_allclose(out.numpy() * valid, t_out.detach().numpy() * valid, atol=TOL)


@pytest.mark.parametrize(
    "mode,options",
    [("lstm", dict(num_layers=2, bidirectional=True, proj_size=3)), ("gru", {}), ("rnn_relu", dict(num_layers=2))],
)
def test_to_torch_round_trip(mode, options):
    import keras

    keras.utils.set_random_seed(3)
    stack = RecurrentStack(mode, 5, bias_initializer="random_normal", **options)
    x = np.random.default_rng(3).standard_normal((2, 4, 3)).astype("float32")
    out, states = stack(x)
    module = to_torch(stack)
    t_out, t_states = module(torch.from_numpy(x))
    np.testing.assert_allclose(t_out.detach().numpy(), out.numpy(), atol=TOL)
    k_states = states if mode == "lstm" else (states,)
    t_states = t_states if mode == "lstm" else (t_states,)
    for k, t in zip(k_states, t_states):
        np.testing.assert_allclose(t.detach().numpy(), k.numpy(), atol=TOL)
    back = from_torch(module)
    for a, b in zip(back.get_weights(), stack.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-7)


def test_torch_verify_cases_rows():
    rows = torch_verify_cases()
    assert len(rows) >= 6
    assert {r["layer"] for r in rows} == {"nn.RNN", "nn.LSTM", "nn.GRU"}
    assert any("proj_size" in r["options"] for r in rows)
    assert any("relu" in r["options"] for r in rows)
    for row in rows:
        assert set(row) == {"layer", "options", "max_out", "max_state", "max_grad", "max_grad_input",
                            "max_grad_state", "max_grad_weights", "path", "expected_path", "against", "ok"}
        assert row["against"] == "torch"
        assert row["ok"] is True, row
        assert 0.0 <= row["max_out"] <= TOL and 0.0 <= row["max_state"] <= TOL
        # gradients of the input, the initial states and every weight, in training mode
        for key in ("max_grad", "max_grad_input", "max_grad_state", "max_grad_weights"):
            assert 0.0 <= row[key] <= TOL, (key, row)
        assert row["path"] == row["expected_path"], row
        if "Keras loop" in row["options"] or "proj_size" in row["options"]:
            assert set(row["path"]) == {"loop"}, row
        else:  # the default (fused for every cell) or forced
            assert set(row["path"]) == {"fused"}, row
    # both the fused BPTT path and Keras' loop are proved against PyTorch for every cell type
    for path in ("fused", "loop"):
        assert {r["layer"] for r in rows if set(r["path"]) == {path}} == {"nn.RNN", "nn.LSTM", "nn.GRU"}


def test_torch_verify_cases_quick_runs_the_seed_examples():
    rows = torch_verify_cases(quick=True)
    assert [r["layer"] for r in rows] == ["nn.RNN", "nn.LSTM", "nn.GRU"]
    assert all(r["ok"] and "seed example" in r["options"] for r in rows)
