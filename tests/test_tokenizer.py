"""The classifier's Python tokeniser: bytes equal the str rule, the batch path equals one text at a time.

`tests/test_export.py` proves `encode` against Keras' `TextVectorization`;
here `hypothesis` proves the byte-level `encode` against the readable
str-level rule (`standardize`), and the joined-texts `encode_array` against
`encode` on arbitrary text lists, separator and surrogates included.
"""

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kerasrnn.export.tokenizer import _SEPARATOR, PUNCTUATION, WHITESPACE, Tokenizer, standardize

VOCAB = ["", "[UNK]", "good", "film", "é", "x_y", "its", "\u00a0", "ÉCOLE".lower()]
PIECES = st.sampled_from(["good", "GOOD", "Film", "é", "É", "x_y", "it's", "\u00a0", "ÉCOLE", "bad", _SEPARATOR,
                          "\udc80", "\ud83d", "😀", *PUNCTUATION, *WHITESPACE, "\x1c", "\u2028"])
TEXTS = st.lists(st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=12).map("".join), max_size=12)


@settings(max_examples=300, deadline=None)
@given(texts=TEXTS, max_len=st.integers(1, 8))
@example(texts=["Good FILM, good!", "", "  ", "good " * 20], max_len=3)
@example(texts=[f"good {_SEPARATOR} film"], max_len=4)
@example(texts=[], max_len=2)
def test_encode_array_equals_encoding_each_text(texts, max_len):
    tok = Tokenizer(VOCAB, max_len)
    got = tok.encode_array(texts)
    assert got.dtype == np.int32 and got.shape == (len(texts), max_len)
    np.testing.assert_array_equal(got, np.array([tok.encode(t) for t in texts], np.int32).reshape(-1, max_len))


def test_encode_array_truncates_pads_and_maps_unknown_tokens():
    tok = Tokenizer(VOCAB, 3)
    got = tok.encode_array(["good film good film", "", "Good, bad!", "é"])
    np.testing.assert_array_equal(got, [[2, 3, 2], [0, 0, 0], [2, 1, 0], [4, 0, 0]])


def test_a_text_holding_the_separator_is_its_own_token_not_a_text_boundary():
    tok = Tokenizer(VOCAB, 4)
    np.testing.assert_array_equal(tok.encode_array([f"good {_SEPARATOR} film", "film"]), [[2, 1, 3, 0], [3, 0, 0, 0]])


_TEXT = st.text(st.sampled_from(list("AbZz  \t\n\v\f\r.,'!-_`~éÉß\u00a0\u0085\u2028漢") + ["\ud800"]), max_size=40)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_TEXT, st.integers(1, 8))
def test_byte_tokenizer_equals_the_reference_rule(text, max_len):
    vocab = ["", "[UNK]", "a", "b", "z", "é", "ab", "zz", "ß", "漢", "\ud800", "é\u00a0b"]
    tok = Tokenizer(vocab, max_len)
    ids = [tok.index.get(t, tok.oov_id) for t in standardize(text)][:max_len]
    want = ids + [0] * (max_len - len(ids))
    assert tok.encode(text) == want
    assert tok.encode_array([text, text]).tolist() == [want, want]
