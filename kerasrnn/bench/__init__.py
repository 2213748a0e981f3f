"""Benchmarks anyone can rerun: layers, claims, export, forecast, scale.

Each module measures and returns plain results; the ``kerasrnn bench ...`` click
commands that call them live in `kerasrnn.commands.bench`.
"""
