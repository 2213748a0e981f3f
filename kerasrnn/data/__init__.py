"""Every data source the recipes read, and the tf.data pipelines that feed models.

Loaders return plain Python/NumPy data (text, ``(texts, labels, class_names)``,
float32 series); `char_dataset`, `text_dataset` and `series_windows` turn them
into `tf.data.Dataset`s. TensorFlow and TensorFlow Datasets are imported only
when a function needs them. Bad input raises `kerasrnn.errors.UserError`.
"""

from kerasrnn.data.labeled import (check_classes, load_class_files, load_class_folders, load_csv, map_labels,
                                   split_examples)
from kerasrnn.data.pipelines import char_dataset, series_windows, text_dataset
from kerasrnn.data.series import MinMaxScaler, SeriesTable, TimeStep, load_series_csv, load_series_table, sine_wave
from kerasrnn.data.text import load_python_stdlib_text, load_text
from kerasrnn.data.tfds_source import load_tfds_examples, load_tfds_text, prepare_tfds

__all__ = [
    "MinMaxScaler",
    "char_dataset",
    "check_classes",
    "load_class_files",
    "load_class_folders",
    "load_csv",
    "load_python_stdlib_text",
    "load_series_csv",
    "load_series_table",
    "load_tfds_examples",
    "load_tfds_text",
    "load_text",
    "map_labels",
    "prepare_tfds",
    "SeriesTable",
    "TimeStep",
    "series_windows",
    "sine_wave",
    "split_examples",
    "text_dataset",
]
