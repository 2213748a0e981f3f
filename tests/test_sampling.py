"""The one sampler (`kerasrnn.sampling`): one algorithm over Keras, SavedModel and LiteRT step functions."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from kerasrnn.errors import UserError
from kerasrnn.rundir import load_run
from kerasrnn.sampling import KerasStep, Sampler, encode, filter_logits, validate_options
from test_export import CHARS, make_generation_run


@pytest.fixture(scope="module")
def gen_run(tmp_path_factory):
    return make_generation_run(tmp_path_factory.mktemp("sampling"), "gru", num_layers=2, units=12, seed=4)


class EagerStep:
    """A non-traceable step function (numpy in and out), like the LiteRT one."""

    traceable = False

    def __init__(self, model):
        self.keras = KerasStep(model)
        self.state_sizes = self.keras.state_sizes
        self.calls = 0

    def initial_states(self, batch):
        return self.keras.initial_states(batch)

    def __call__(self, tokens, states):
        self.calls += 1
        logits, new = self.keras(np.asarray(tokens), [np.asarray(s) for s in states])
        return np.asarray(logits), [np.asarray(s) for s in new]


def test_traced_and_eager_runs_of_the_one_loop_agree(gen_run):
    model = load_run(gen_run).model
    traced = Sampler(model, CHARS, jit_compile=False)
    eager_step = EagerStep(model)
    eager = Sampler(eager_step, CHARS)
    opts = dict(length=30, num_samples=3, temperature=0.9, top_k=4, top_p=0.9, seed=11)
    assert traced.generate("abc", **opts) == eager.generate("abc", **opts)
    # one step per character: 2 seed characters before the last + 30 new ones, never the prefix again
    assert eager_step.calls == 2 + 30
    # the XLA-compiled default is reproducible with itself
    xla = Sampler(model, CHARS)
    assert xla.generate("abc", **opts) == xla.generate("abc", **opts)


def test_greedy_is_the_argmax_chain(gen_run):
    model = load_run(gen_run).model
    step = KerasStep(model)
    states = step.initial_states(1)
    token, out = np.array([CHARS.index("a")], np.int32), []
    for _ in range(12):
        logits, states = step(token, states)
        token = np.asarray(logits).argmax(-1).astype(np.int32)
        out.append(CHARS[int(token[0])])
    assert Sampler(model, CHARS).generate("a", length=12, temperature=0)[0] == "a" + "".join(out)


def test_filter_logits_keeps_top_k_and_nucleus():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]], np.float32))
    kept = np.isfinite(filter_logits(logits, top_k=2).numpy())
    assert kept.tolist() == [[True, True, False, False]]
    kept = np.isfinite(filter_logits(logits, top_p=0.7).numpy())
    assert kept.tolist() == [[True, True, False, False]]
    kept = np.isfinite(filter_logits(logits, top_p=0.01).numpy())  # the most likely token always stays
    assert kept.tolist() == [[True, False, False, False]]


def test_unknown_character_policy_and_messages_name_settings():
    assert encode("abz", ["a", "b"], unknown="skip") == [0, 1]
    with pytest.raises(UserError, match=r"seed_text has 1 character\(s\) .*'z'.*set unknown='skip'") as e:
        encode("abz", ["a", "b"])
    assert "--" not in str(e.value)
    for args, name in (((0, 1, 1.0, 0, 1.0), "length"), ((5, 0, 1.0, 0, 1.0), "num_samples"),
                       ((5, 1, -1.0, 0, 1.0), "temperature"), ((5, 1, float("nan"), 0, 1.0), "temperature"),
                       ((5, 1, 1.0, -1, 1.0), "top_k"), ((5, 1, 1.0, 0, 0.0), "top_p")):
        with pytest.raises(UserError, match=f"^{name} must") as e:
            validate_options(*args)
        assert "--" not in str(e.value)


def test_cli_names_the_flags(gen_run):
    from kerasrnn.cli import main

    result = CliRunner().invoke(main, ["generate", str(gen_run), "--temperature", "-1"])
    assert result.exit_code == 1 and "Error: --temperature must be >= 0" in result.output
    result = CliRunner().invoke(main, ["generate", str(gen_run), "--seed-text", "xyz", "--top-k", "2"])
    assert result.exit_code == 1 and "--seed-text has 3 character(s)" in result.output
    assert "--unknown skip" in result.output
