"""TensorFlow Datasets, with a fast, explained failure when offline.

`tfds.load` on a dataset that is not prepared downloads it, and without network
its HTTP client retries with exponential back-off for minutes (measured: still
retrying after 150 s for tiny_shakespeare). So before any download we check
whether the dataset is prepared in the data dir; if not, we try a TCP connect
(3 s timeout) to each host it would download from, and raise a `UserError`
naming the offline options when one is unreachable.

Data dir: the `data_dir` argument, else ``$TFDS_DATA_DIR``, else TFDS' default
(``~/tensorflow_datasets``).
"""

from __future__ import annotations

import os
import socket
import urllib.parse

from kerasrnn.data.text import join_texts
from kerasrnn.errors import UserError

CONNECT_TIMEOUT_S = 3.0
FIND_NAMES_HINT = (
    "see https://www.tensorflow.org/datasets/catalog/overview or run "
    "python -c \"import tensorflow_datasets as tfds; print(tfds.list_builders())\""
)


def _tfds():
    try:
        import tensorflow_datasets as tfds  # lazy: heavy import
    except ImportError as e:
        raise UserError(f"tensorflow-datasets is not usable ({e}); pip install tensorflow-datasets importlib_resources") from None
    return tfds


def resolve_data_dir(data_dir: str | None = None) -> str | None:
    """`data_dir`, else ``$TFDS_DATA_DIR``, else None (TFDS' default)."""
    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or None
    return os.path.expanduser(data_dir) if data_dir else None


def get_builder(name: str, data_dir: str | None = None):
    """`tfds.builder(name)` for the resolved data dir; unknown names raise `UserError`."""
    tfds = _tfds()
    try:
        return tfds.builder(name, data_dir=resolve_data_dir(data_dir))
    except tfds.core.registered.DatasetNotFoundError:
        raise UserError(f"unknown TFDS dataset {name!r}; {FIND_NAMES_HINT}") from None
    except ValueError as e:  # bad config/version in "name/config:version"
        raise UserError(f"TFDS dataset {name!r}: {str(e).splitlines()[0]}; {FIND_NAMES_HINT}") from None


def _is_mocked() -> bool:
    """True inside `tfds.testing.mock_data`, where preparing is a no-op and needs no network."""
    tfds = _tfds()
    fn = tfds.core.DatasetBuilder.download_and_prepare
    return getattr(fn, "__module__", "").startswith("tensorflow_datasets.testing")


def download_hosts(builder) -> list[tuple[str, int]]:
    """(host, port) pairs the builder downloads from, from its checksums file."""
    try:
        urls = list((builder.url_infos or {}).keys())
    except Exception:  # builders without a checksums file
        urls = []
    hosts = []
    for url in urls:
        parsed = urllib.parse.urlsplit(url)
        if parsed.hostname:
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            if (parsed.hostname, port) not in hosts:
                hosts.append((parsed.hostname, port))
    return hosts or [("storage.googleapis.com", 443)]


def _proxy_for(port: int) -> tuple[str, int] | None:
    for var in (("HTTPS_PROXY", "https_proxy") if port == 443 else ("HTTP_PROXY", "http_proxy")):
        if os.environ.get(var):
            p = urllib.parse.urlsplit(os.environ[var] if "://" in os.environ[var] else "http://" + os.environ[var])
            if p.hostname:
                return p.hostname, p.port or 8080
    return None


def network_available(hosts: list[tuple[str, int]], timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether a TCP connection opens to every host (or to the configured proxy) within `timeout`."""
    for host, port in hosts:
        target = _proxy_for(port) or (host, port)
        try:
            socket.create_connection(target, timeout=timeout).close()
        except OSError:
            return False
    return True


def _offline_error(builder, what: str) -> UserError:
    name = builder.name
    hosts = ", ".join(h for h, _ in download_hosts(builder))
    root = str(builder.data_dir_root)
    return UserError(
        f"TFDS dataset {name!r} is not prepared in {root} and {what} ({hosts} unreachable); "
        f"set TFDS_DATA_DIR or data.data_dir to a directory where it is prepared, or download its files "
        f"elsewhere and run `kerasrnn data prepare {name} --manual-dir DIR`"
    )


def ensure_prepared(builder, download_config=None) -> None:
    """Prepare the dataset if needed, refusing quickly (UserError) when that needs an unreachable network."""
    if _is_mocked() or builder.is_prepared():
        return
    manual_dir = getattr(download_config, "manual_dir", None)
    needed = _missing_manual_files(builder, manual_dir) if manual_dir else None
    # A manual dir holding every file (or a manual-only dataset) needs no network.
    needs_network = not manual_dir or bool(needed)
    if needs_network and not network_available(download_hosts(builder)):
        if manual_dir:
            raise UserError(
                f"{manual_dir} lacks {', '.join(needed)} needed to prepare {builder.name!r} offline and the "
                f"download hosts are unreachable; put the downloaded file(s) there under those names"
            )
        raise _offline_error(builder, "the network is unavailable")
    try:
        builder.download_and_prepare(download_config=download_config)
    except UserError:
        raise
    except Exception as e:  # checksum mismatch, manual-dir instructions, ...
        first = (str(e).strip().splitlines() or [type(e).__name__])[0].rstrip(":")
        hint = f"; check that the files in {manual_dir} are the original downloads" if manual_dir else ""
        raise UserError(f"preparing TFDS dataset {builder.name!r} failed: {type(e).__name__}: {first}{hint}") from None


def _missing_manual_files(builder, manual_dir) -> list[str] | None:
    """File names from the builder's checksums that are not in `manual_dir` (None if unknown)."""
    try:
        infos = builder.url_infos
    except Exception:
        return None
    if not infos:
        return None
    names = [info.filename for info in infos.values() if getattr(info, "filename", None)]
    if len(names) != len(infos):
        return None
    return [n for n in names if not os.path.exists(os.path.join(manual_dir, n))]


def _dataset(name: str, split: str, data_dir: str | None):
    builder = get_builder(name, data_dir)
    ensure_prepared(builder)
    splits = list(builder.info.splits.keys())
    base = split.split("[")[0].split("+")[0]
    if splits and base not in splits:
        raise UserError(f"TFDS dataset {name!r} has no split {split!r}; available splits: {', '.join(splits)}")
    try:
        ds = builder.as_dataset(split=split)
    except (ValueError, KeyError) as e:
        raise UserError(f"TFDS dataset {name!r} split {split!r}: {str(e).splitlines()[0]}") from None
    return builder, ds


def _check_key(builder, key: str, role: str) -> None:
    features = builder.info.features
    if key not in features:
        raise UserError(
            f"TFDS dataset {builder.name!r} has no feature {key!r} (set data.{role}); "
            f"features: {', '.join(features.keys())}"
        )


def _decode(value) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def load_tfds_text(name: str, split: str, text_key: str = "text", data_dir: str | None = None) -> str:
    """The text feature of every example of a TFDS split, concatenated (LF line endings).

    Consecutive examples are joined with a newline when the first does not end
    with one (tiny_shakespeare has a single example per split).

    >>> text = load_tfds_text("tiny_shakespeare", "train")  # doctest: +SKIP
    >>> len(text)  # doctest: +SKIP
    1003854
    """

    builder, ds = _dataset(name, split, data_dir)
    _check_key(builder, text_key, "text_key")
    tfds = _tfds()
    text = join_texts(_decode(ex[text_key]) for ex in tfds.as_numpy(ds))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text:
        raise UserError(f"TFDS dataset {name!r} split {split!r} has no text")
    return text


def load_tfds_examples(name: str, split: str, text_key: str = "text", label_key: str = "label",
                       data_dir: str | None = None) -> tuple[list[str], list[int], list[str]]:
    """``(texts, labels, class_names)`` of a labelled TFDS split; class names from its ClassLabel.

    >>> texts, labels, names = load_tfds_examples("imdb_reviews", "train")  # doctest: +SKIP
    >>> names  # doctest: +SKIP
    ['neg', 'pos']
    """
    builder, ds = _dataset(name, split, data_dir)
    _check_key(builder, text_key, "text_key")
    _check_key(builder, label_key, "label_key")
    feature = builder.info.features[label_key]
    class_names = list(getattr(feature, "names", None) or [])
    if not class_names:
        raise UserError(f"TFDS feature {name}/{label_key} is not a ClassLabel; pick a class label feature for data.label_key")
    tfds = _tfds()
    texts, labels = [], []
    for ex in tfds.as_numpy(ds.map(lambda e: (e[text_key], e[label_key]))):
        texts.append(_decode(ex[0]))
        labels.append(int(ex[1]))
    return texts, labels, class_names


def prepare_tfds(name: str, manual_dir: str, data_dir: str | None = None) -> str:
    """Prepare a TFDS dataset from already-downloaded files, without network.

    Put the files TFDS would download into `manual_dir`, named as in the
    builder's ``checksums.tsv`` (tiny_shakespeare: ``input.txt``;
    imdb_reviews: ``aclImdb_v1.tar.gz``). Does nothing if already prepared.

    Returns:
        The data dir (root) the dataset is prepared in; pass it as
        ``TFDS_DATA_DIR`` / ``data.data_dir``.

    >>> prepare_tfds("tiny_shakespeare", manual_dir="downloads/")  # doctest: +SKIP
    '/home/me/tensorflow_datasets'
    """
    tfds = _tfds()
    manual_dir = os.path.expanduser(os.fspath(manual_dir))
    if not os.path.isdir(manual_dir):
        raise UserError(f"--manual-dir {manual_dir} is not a directory; put the downloaded dataset files there")
    builder = get_builder(name, data_dir)
    ensure_prepared(builder, tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False))
    return str(builder.data_dir_root)
