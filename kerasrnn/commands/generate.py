"""`kerasrnn generate RUN_DIR`: sample text from a trained char model."""

from __future__ import annotations

import click

from kerasrnn.sampling import UNKNOWN_POLICIES


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False), required=False)
@click.option("--seed-text", default=None, help="Text the samples start with (default: the recipe's eval.seed_text).")
@click.option("--length", default=300, show_default=True, help="New characters per sample.")
@click.option("--temperature", default=None, type=float,
              help="Softmax temperature, 0 = greedy (default: the recipe's eval.temperature).")
@click.option("--top-k", default=0, show_default=True, help="Keep only the k most likely characters (0 = off).")
@click.option("--top-p", default=1.0, show_default=True, help="Nucleus sampling mass (1.0 = off).")
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
    from kerasrnn.export.runners import cli_artifact, generate_with_artifact
    from kerasrnn.rundir import load_run
    from kerasrnn.sampling import Sampler, encode, validate_options

    artifact = cli_artifact(run_dir, tflite_file, savedmodel_dir, task="generation")
    if artifact is not None:  # same options and sampling, through the exported artifact
        samples = generate_with_artifact(*artifact, seed_text, length, temperature, top_k, top_p,
                                         num_samples, seed, unknown)
        for i, text in enumerate(samples):
            if num_samples > 1:
                click.echo(f"----- sample {i + 1} -----")
            click.echo(text)
        return
    run = load_run(run_dir, task="generation", load_model=False)
    defaults = run.info["recipe"].get("eval", {})
    seed_text = defaults.get("seed_text", "\n") if seed_text is None else seed_text
    temperature = defaults.get("temperature", 1.0) if temperature is None else temperature
    unknown = unknown or run.vocab.get("unknown_char_policy", "error")
    validate_options(length, num_samples, temperature, top_k, top_p)
    encode(seed_text, run.vocab["chars"], unknown)  # fail on unknown characters before loading the model
    run = load_run(run_dir, task="generation")
    sampler = Sampler(run.model, run.vocab["chars"])
    samples = sampler.generate(seed_text, length, num_samples, temperature, top_k, top_p, seed, unknown)
    for i, text in enumerate(samples):
        if num_samples > 1:
            click.echo(f"----- sample {i + 1} -----")
        click.echo(text)
