"""`kerasrnn bench`: measurements anyone can rerun (layers, claims, export)."""

import click

from kerasrnn.cli import LazyGroup

BENCHES = {
    "layers": "kerasrnn.bench.layers:bench_layers",
    "claims": "kerasrnn.bench.claims:bench_claims",
    "export": "kerasrnn.bench.export:bench_export",
}


@click.group(cls=LazyGroup, lazy_commands=BENCHES)
def bench():
    """Benchmarks: `layers` (speed vs Keras/PyTorch), `claims` (the seeds' table), `export`."""
