"""Streaming a text file to compact token ids: same ids as the in-memory path, located errors,
bounded memory for a long single line."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rnnkit.data import DataFormatError, Vocab, WordTokenizer
from rnnkit.data.text_ids import (
    collect,
    count_chars,
    encode_chars,
    encode_tokens,
    id_dtype,
    iter_text_blocks,
    word_pieces,
)

TEXT = "ROMEO: But, soft! what light\nthrough yonder window — breaks?\n\ufeffé\n"


def test_blocks_split_anywhere_give_the_same_counts_and_ids(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"\xef\xbb\xbf" + TEXT.encode("utf-8"))
    whole = Vocab.build([list(TEXT)])
    for block in (1, 2, 3, 7, 1 << 20):  # multi-byte chars straddle small blocks
        counts = count_chars(iter_text_blocks(path, block))
        assert Vocab.from_counts(counts) == whole
        ids = encode_chars(iter_text_blocks(path, block), whole)
        assert ids.dtype == np.uint8 and ids.tolist() == whole.encode(list(TEXT))


def test_word_pieces_match_line_by_line_tokens(tmp_path):
    path = tmp_path / "w.txt"
    path.write_text("The cat sat.\nOn the mat\n\nend", encoding="utf-8")
    tokenizer = WordTokenizer()
    expected = [t for line in path.read_text().splitlines()
                for t in [*tokenizer.encode(line), "<eos>"]]
    for block in (3, 5, 1 << 20):
        pieces = word_pieces(iter_text_blocks(path, block), tokenizer.encode, "<eos>")
        assert [t for piece in pieces for t in piece] == expected
    vocab = Vocab.build([expected])
    ids = encode_tokens(word_pieces(iter_text_blocks(path), tokenizer.encode, "<eos>"), vocab)
    assert ids.tolist() == vocab.encode(expected)


def test_id_dtype_is_the_smallest_that_fits():
    assert [id_dtype(n) for n in (4, 256, 257, 32768, 32769)] == [
        np.uint8, np.uint8, np.int16, np.int16, np.int32]


@pytest.mark.parametrize(("data", "reason"), [
    (b"ok\nbad \xff here\n", "2: invalid UTF-8 byte 0xff at byte offset 7"),
    (b"ok\nok\nnul\x00\n", "3: NUL byte at byte offset 9 (binary or UTF-16 data"),
])
def test_binary_data_is_located(tmp_path, data, reason):
    path = tmp_path / "b.txt"
    path.write_bytes(data)
    with pytest.raises(DataFormatError, match=re.escape(f"{path}:{reason}")):
        list(iter_text_blocks(path, 4))


def test_a_long_single_line_is_encoded_in_bounded_memory(tmp_path):
    # 64 MB on one line: the ids take 64 MB; the old path (str + list of chars) took > 600 MB.
    path = tmp_path / "line.txt"
    path.write_bytes(b"abcdefgh" * (8 << 20))
    script = textwrap.dedent(f"""
        import resource
        import numpy as np
        from rnnkit.data import Vocab
        from rnnkit.data.text_ids import count_chars, encode_chars, iter_text_blocks
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        vocab = Vocab.from_counts(count_chars(iter_text_blocks({str(path)!r})))
        ids = encode_chars(iter_text_blocks({str(path)!r}), vocab)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(len(ids), ids.dtype, (after - before) // 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[:2] == [str(64 << 20), "uint8"]
    assert int(out[2]) < 2 * 64 + 200  # MB: twice the ids plus one block's working arrays


@pytest.mark.parametrize("capacity", [None, 11, 40, 5])
def test_ids_written_into_one_buffer_equal_the_joined_blocks(capacity):
    """A capacity (the file's size) gives the same ids; a wrong bound falls back to joining."""
    vocab = Vocab.build([list("hello word")])
    blocks = ["hel", "lo w", "orld!"]  # "!" is unknown
    expected = np.concatenate([encode_chars(iter([b]), vocab) for b in blocks])
    ids = encode_chars(iter(blocks), vocab, capacity=capacity)
    assert ids.dtype == expected.dtype
    np.testing.assert_array_equal(ids, expected)


def test_collect_writes_in_place_without_joining():
    parts = [np.arange(3, dtype=np.uint8), np.arange(4, dtype=np.uint8)]
    ids = collect(iter(parts), np.dtype(np.uint8), capacity=1000)
    np.testing.assert_array_equal(ids, [0, 1, 2, 0, 1, 2, 3])
    assert ids.base is not None and ids.base.size == 1000  # a view of the one buffer
