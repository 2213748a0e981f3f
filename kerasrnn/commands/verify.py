"""`kerasrnn verify`: the click command over `kerasrnn.verify`.

Runs every equivalence case and prints the table (or JSON); exits 1 if any fails.
"""

from __future__ import annotations

import json

import click

from kerasrnn import verify


@click.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@click.option("--quick", is_flag=True, help="Run a smaller set of cases (every option once).")
@click.option("--keras-tests", is_flag=True,
              help="Instead: run Keras' own lstm/gru/simple_rnn test files with our layers swapped in (~1 min).")
def verify_command(as_json: bool, quick: bool, keras_tests: bool):
    """Prove kerasrnn.layers equal keras.layers (and from_torch equals PyTorch).

    Runs every equivalence case (outputs, states and gradients after a
    weight copy, float32, tolerance 1e-5) and prints a table; exits with
    status 1 if any case fails.
    """
    if keras_tests:
        result = verify.run_keras_test_files()
        if as_json:
            click.echo(json.dumps(result, indent=2))
        else:
            click.echo(f"Keras {result['keras']} test files {', '.join(verify.KERAS_TEST_FILES)} with kerasrnn's "
                       f"layers: {result['passed']} passed, {result['failed']} failed, "
                       f"{result['skipped']} skipped" + "".join(f"\n  FAILED {t}" for t in result["failures"]))
        if result["failed"] or result["returncode"] not in (0, 5):
            raise SystemExit(1)
        return
    rows = verify.keras_verify_cases(quick=quick)
    extra, note = verify.torch_rows(quick=quick)
    rows += extra
    notes = [note] if note else []
    failed = [r for r in rows if not r["ok"]]
    if as_json:
        clean = [{k: verify.json_safe(v) for k, v in r.items()} for r in rows]
        click.echo(json.dumps({"ok": not failed, "tolerance": verify.TOLERANCE, "cases": clean,
                               "notes": notes}, indent=2))
    else:
        click.echo(verify.format_table(rows))
        for text in notes:
            click.echo(f"note: {text}")
        click.echo(f"{len(rows) - len(failed)}/{len(rows)} cases within {verify.TOLERANCE:g}"
                   + ("" if not failed else f"; FAILED: {', '.join(r.get('id', r['layer']) for r in failed)}"))
    if failed:
        raise SystemExit(1)
