"""Test-wide settings: quiet TensorFlow, TensorFlow backend, no GPU lookups."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

# hypothesis profiles (tests/test_fuzz.py): "ci" is the default, small and fast; "long" is the fuzzing
# benchmark: pytest tests/test_fuzz.py --hypothesis-profile=long
try:
    from hypothesis import settings

    settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True, database=None)  # no shared .hypothesis/ between xdist workers
    settings.register_profile("long", max_examples=400, deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is in the `test` extra
    pass
