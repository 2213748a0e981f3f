"""kerasrnn: a Keras 3 toolkit for recurrent text models."""

__version__ = "0.1.0"
