"""`kerasrnn bench`: measurements anyone can rerun (layers, claims, export)."""

import click

from kerasrnn.commands.lazy import LazyGroup

BENCHES = {
    "layers": "kerasrnn.bench.layers:bench_layers",
    "claims": "kerasrnn.bench.claims:bench_claims",
    "export": "kerasrnn.commands.bench:bench_export",
    "forecast": "kerasrnn.commands.bench:bench_forecast",
    "scale": "kerasrnn.commands.bench:bench_scale",
}


@click.group(cls=LazyGroup, lazy_commands=BENCHES)
def bench():
    """Benchmarks: `layers` (speed vs Keras/PyTorch), `claims` (the seeds' table), `export`."""
