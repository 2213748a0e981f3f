"""`kerasrnn generate RUN_DIR`: sample text from a trained char model (or its exported artifact)."""

from __future__ import annotations

import click

from kerasrnn.commands.flags import settings_as_flags
from kerasrnn.rundir import load_run
from kerasrnn.sampling import UNKNOWN_POLICIES
from kerasrnn.sampling import Sampler, encode, sampling_defaults, validate_options

FLAGS = {"seed_text": "--seed-text", "length": "--length", "temperature": "--temperature", "top_k": "--top-k",
         "top_p": "--top-p", "num_samples": "--num-samples", "unknown='skip'": "--unknown skip",
         "unknown": "--unknown"}


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False), required=False)
@click.option("--seed-text", default=None, help="Text the samples start with (default: the recipe's eval.seed_text).")
@click.option("--length", default=None, type=int,
              help="New characters per sample (default: the recipe's eval.sample_length).")
@click.option("--temperature", default=None, type=float,
              help="Softmax temperature, 0 = greedy (default: the recipe's eval.temperature).")
@click.option("--top-k", default=None, type=int,
              help="Keep only the k most likely characters, 0 = off (default: the recipe's eval.top_k).")
@click.option("--top-p", default=None, type=float,
              help="Nucleus sampling mass, 1.0 = off (default: the recipe's eval.top_p).")
@click.option("--num-samples", default=1, show_default=True, help="Samples drawn at once (one batch).")
@click.option("--seed", default=0, show_default=True, help="Random seed: the same seed gives the same samples.")
@click.option("--unknown", type=click.Choice(UNKNOWN_POLICIES), default=None,
              help="Seed characters missing from the vocabulary: error (default) or skip (drop them).")
@click.option("--tflite", "tflite_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Run this exported TFLite step model (LiteRT interpreter) instead of RUN_DIR's Keras model.")
@click.option("--savedmodel", "savedmodel_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Run this exported SavedModel ('step' signature) instead of RUN_DIR's Keras model.")
def generate(run_dir, seed_text, length, temperature, top_k, top_p, num_samples, seed, unknown,
             tflite_file, savedmodel_dir):
    """Generate text from a generation run directory (one model step per new character)."""
    with settings_as_flags(FLAGS):
        samples = _generate(run_dir, seed_text, length, temperature, top_k, top_p, num_samples, seed, unknown,
                            tflite_file, savedmodel_dir)
    for i, text in enumerate(samples):
        if num_samples > 1:
            click.echo(f"----- sample {i + 1} -----")
        click.echo(text)


def _generate(run_dir, seed_text, length, temperature, top_k, top_p, num_samples, seed, unknown,
              tflite_file, savedmodel_dir) -> list[str]:
    """The samples, from the exported artifact if one is given, else from RUN_DIR's Keras model.

    Unset options take the artifact's manifest defaults (or the run's recipe),
    and every option is validated before a model is loaded.
    """
    from kerasrnn.export.runners import cli_artifact  # lazy: imports TensorFlow

    if tflite_file or savedmodel_dir:
        sampler = cli_artifact(run_dir, tflite_file, savedmodel_dir, task="generation")
        defaults = sampler.manifest.get("sampling_defaults", {})
        policy = sampler.manifest.get("tokenization", {}).get("unknown_char_policy", "error")
    else:
        sampler = None
        cli_artifact(run_dir, None, None, task="generation")  # no RUN_DIR: one-line error
        run = load_run(run_dir, task="generation", load_model=False)
        defaults, policy = run.info["recipe"].get("eval", {}), run.vocab.get("unknown_char_policy", "error")
    o = sampling_defaults(defaults, seed_text=seed_text, sample_length=length, temperature=temperature,
                          top_k=top_k, top_p=top_p)
    unknown = unknown or policy
    validate_options(o["sample_length"], num_samples, o["temperature"], o["top_k"], o["top_p"])
    if sampler is None:
        encode(o["seed_text"], run.vocab["chars"], unknown)  # fail on unknown characters before loading the model
        run = load_run(run_dir, task="generation")
        sampler = Sampler(run.model, run.vocab["chars"])
    return sampler.generate(o["seed_text"], o["sample_length"], num_samples, o["temperature"], o["top_k"],
                            o["top_p"], seed, unknown)
