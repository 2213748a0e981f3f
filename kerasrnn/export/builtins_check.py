"""Prove a .tflite flatbuffer runs on the stock LiteRT runtime: builtin operators only.

The flatbuffer's operator-code table is read with the schema bindings that ship
with ``ai_edge_litert``; any ``CUSTOM`` operator (which includes every
``Flex*`` TensorFlow op pulled in by ``SELECT_TF_OPS``) is refused.

>>> ops = list_operators(open("model.tflite", "rb").read())  # doctest: +SKIP
>>> ops[:3]  # doctest: +SKIP
['ADD', 'FULLY_CONNECTED', 'GATHER']
"""

from __future__ import annotations

from ai_edge_litert import schema_py_generated as schema

from kerasrnn.errors import UserError

_CUSTOM = schema.BuiltinOperator.CUSTOM
_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def builtin_code(operator_code) -> int:
    """The `schema.BuiltinOperator` value of one entry of a model's operator-code table.

    Old files store codes < 127 in the deprecated byte field only, so the larger of the two fields is the code.
    """
    return max(operator_code.BuiltinCode(), operator_code.DeprecatedBuiltinCode())


def operator_name(operator_code) -> str:
    """The name of one entry of a model's operator-code table: ``"FULLY_CONNECTED"``, ``"CUSTOM:<code>"``, ..."""
    builtin = builtin_code(operator_code)
    if builtin == _CUSTOM:
        custom = operator_code.CustomCode()
        return "CUSTOM:" + (custom.decode("utf-8", "replace") if custom else "?")
    return _NAMES.get(builtin, f"BUILTIN_{builtin}")


def list_operators(model_content: bytes) -> list[str]:
    """Sorted operator names used by a .tflite model; custom ops appear as ``CUSTOM:<code>``.

    Args:
        model_content: the flatbuffer bytes.

    >>> list_operators(buf)  # doctest: +SKIP
    ['FULLY_CONNECTED', 'GATHER', 'TANH']
    """
    model = schema.Model.GetRootAs(model_content, 0)
    return sorted({operator_name(model.OperatorCodes(i)) for i in range(model.OperatorCodesLength())})


def non_builtin_operators(model_content: bytes) -> list[str]:
    """The operators of a .tflite model that the stock runtime lacks (custom / Flex), sorted."""
    return [op for op in list_operators(model_content) if op.startswith("CUSTOM:") or op.startswith("Flex")]


def check_builtins_only(model_content: bytes, what: str = "model") -> list[str]:
    """Return the operator list, or raise `UserError` if any operator is not a builtin.

    Args:
        model_content: the flatbuffer bytes.
        what: name used in the error message (default ``"model"``).

    >>> check_builtins_only(buf, "step model")  # doctest: +SKIP
    ['ADD', 'FULLY_CONNECTED', 'GATHER', 'LOGISTIC', 'MUL', 'TANH']
    """
    bad = non_builtin_operators(model_content)
    if bad:
        raise UserError(f"the {what} TFLite flatbuffer uses non-builtin operators {bad}; it would need the "
                        "Flex delegate or custom kernels, so nothing was written; convert without "
                        "SELECT_TF_OPS (recurrent loops: trace them inside kerasrnn.export.tflite.while_loops)")
    return list_operators(model_content)
