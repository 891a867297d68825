"""Every reader on small temporary files, including each error and skip mode."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.data import (
    ConllReader,
    DataFormatError,
    LabelledTextReader,
    PairReader,
    SeriesReader,
    SlashTaggedReader,
    TextReader,
    read_text,
)


def write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def located(path, line, reason):
    """The exact message of a DataFormatError (pinned so users always get file:line)."""
    location = f"{path}:{line}" if line is not None else str(path)
    return "^" + re.escape(f"{location}: {reason}") + "$"


# --- plain text -------------------------------------------------------------------------

def test_text_reader_streams_lines_and_read_text_keeps_line_ends(tmp_path):
    path = write(tmp_path, "a.txt", "\ufeffFirst\r\n\nthird\n")
    assert [(r.text, r.line) for r in TextReader(path)] == [("First", 1), ("", 2), ("third", 3)]
    assert read_text(path) == "First\r\n\nthird\n"


def test_non_utf8_bytes_name_file_line_and_byte_offset(tmp_path):
    path = write(tmp_path, "latin.txt", b"ok line\ncaf\xe9\n")
    with pytest.raises(DataFormatError, match=located(
            path, 2, "invalid UTF-8 byte 0xe9 at byte offset 11 (convert the file to UTF-8)")):
        list(TextReader(path))


def test_non_utf8_line_is_skipped_and_counted_in_skip_mode(tmp_path, caplog):
    path = write(tmp_path, "latin.txt", b"ok\n\xff\xfe\nfine\n")
    reader = TextReader(path, on_error="skip")
    with caplog.at_level(logging.WARNING, logger="rnnkit.data"):
        assert [r.text for r in reader] == ["ok", "fine"]
    assert reader.skipped == 1 and reader.skip_log.errors[0].line == 2
    assert "skipped 1 malformed record(s)" in caplog.text


def test_empty_and_missing_files_are_clear_errors(tmp_path):
    empty = write(tmp_path, "empty.txt", "")
    with pytest.raises(DataFormatError, match=located(empty, None, "file is empty")) as error:
        list(TextReader(empty))
    assert error.value.line is None and error.value.path == empty
    with pytest.raises(FileNotFoundError, match=r"data file not found: .*nope\.txt"):
        TextReader(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip', got 'ignore'"):
        TextReader(empty, on_error="ignore")


# --- CSV/TSV classification ----------------------------------------------------------------

def test_labelled_csv_with_quotes_multiline_fields_and_groups(tmp_path):
    path = write(tmp_path, "r.csv", 'text,label,movie\n"Good, very ""good""",pos,m1\n'
                                    '"two\nlines",neg,m2\n\nplain,pos,m1\n')
    records = LabelledTextReader(path, group_column="movie").read()
    assert [(r.text, r.label, r.group, r.line) for r in records] == [
        ('Good, very "good"', "pos", "m1", 2), ("two\nlines", "neg", "m2", 4),
        ("plain", "pos", "m1", 6)]


def test_csv_non_utf8_byte_names_its_line(tmp_path):
    path = write(tmp_path, "r.csv", b"text,label\ngood,pos\nna\xefve,neg\n")
    with pytest.raises(DataFormatError, match=located(
            path, 3, "invalid UTF-8 byte 0xef at byte offset 22 (convert the file to UTF-8)")):
        list(LabelledTextReader(path))


def test_csv_skip_mode_keeps_physical_line_numbers_after_a_bad_byte(tmp_path):
    path = write(tmp_path, "r.csv", b"text,label\n\xff,pos\nok,neg\nbroken\nfine,pos\n")
    reader = LabelledTextReader(path, on_error="skip")
    assert [(r.text, r.line) for r in reader] == [("ok", 3), ("fine", 5)]
    assert [e.line for e in reader.skip_log.errors] == [2, 4]
    bad_header = write(tmp_path, "h.csv", b"t\xffxt,label\nok,neg\n")
    with pytest.raises(DataFormatError, match=located(bad_header, 1,
                                                      "the header row is not valid UTF-8")):
        list(LabelledTextReader(bad_header, on_error="skip"))


def test_tsv_delimiter_is_inferred_and_columns_are_configurable(tmp_path):
    path = write(tmp_path, "r.tsv", "sentence\tsentiment\nhi, there\t1\n")
    record, = LabelledTextReader(path, text_column="sentence", label_column="sentiment")
    assert (record.text, record.label) == ("hi, there", "1")


def test_missing_label_column_names_the_columns_found(tmp_path):
    path = write(tmp_path, "r.csv", "review,stars\ngood,5\n")
    with pytest.raises(DataFormatError, match=located(
            path, 1, "missing column(s) ['label']; the header has ['review', 'stars'] "
            "(delimiter ','; set the column names to match)")):
        list(LabelledTextReader(path, text_column="review"))


def test_csv_malformed_rows_raise_with_line_or_are_skipped(tmp_path):
    path = write(tmp_path, "r.csv", "text,label\ngood,pos\nbad row\n,neg\nfine,neg\n")
    with pytest.raises(DataFormatError, match=located(
            path, 3, "expected 2 fields (','-separated), got 1")):
        list(LabelledTextReader(path))
    reader = LabelledTextReader(path, on_error="skip")
    assert [r.text for r in reader] == ["good", "fine"]
    assert reader.skipped == 2
    assert [e.reason for e in reader.skip_log.errors] == [
        "expected 2 fields (','-separated), got 1", "empty 'text' field"]


# --- tagging ----------------------------------------------------------------------------

CONLLU = """# sent_id = 1
# text = I can't go.
1\tI\tI\tPRON\t_\t_\t0\t_\t_\t_
2-3\tcan't\t_\t_\t_\t_\t_\t_\t_\t_
2\tca\tcan\tAUX\t_\t_\t0\t_\t_\t_
3\tn't\tnot\tPART\t_\t_\t0\t_\t_\t_
3.1\tgone\t_\t_\t_\t_\t_\t_\t_\t_
4\tgo\tgo\tVERB\t_\t_\t0\t_\t_\t_

1\tHi\thi\tINTJ\t_\t_\t0\t_\t_\t_
"""


def test_conllu_skips_comments_ranges_and_empty_nodes(tmp_path):
    path = write(tmp_path, "a.conllu", CONLLU)
    sentences = ConllReader.conllu_upos(path).read()
    assert [(s.words, s.tags, s.line) for s in sentences] == [
        (("I", "ca", "n't", "go"), ("PRON", "AUX", "PART", "VERB"), 3),
        (("Hi",), ("INTJ",), 10)]


def test_conll_whitespace_columns_and_docstart(tmp_path):
    path = write(tmp_path, "a.conll", "-DOCSTART- -X- O O\n\nEU NNP B-NP B-ORG\nrejects VBZ "
                                      "B-VP O\n\n\nPeter NNP B-NP B-PER\n")
    sentences = ConllReader(path).read()
    assert [s.tags for s in sentences] == [("B-ORG", "O"), ("B-PER",)]
    assert ConllReader(path, tag_column=1).read()[0].tags == ("NNP", "VBZ")


def test_conll_malformed_line_breaks_its_sentence(tmp_path):
    path = write(tmp_path, "a.conllu", "1\tA\ta\tDET\n2\tbroken\n\nx\tB\tb\tNOUN\n\n"
                                       "1\tC\tc\tNOUN\n")
    with pytest.raises(DataFormatError, match=located(
            path, 2, "expected at least 4 columns, got 2: '2\\tbroken'")):
        list(ConllReader.conllu_upos(path))
    reader = ConllReader.conllu_upos(path, on_error="skip")
    assert [s.words for s in reader] == [("C",)]
    assert reader.skipped == 2
    assert reader.skip_log.errors[1].reason == "CoNLL-U ID 'x' is not a number"


def test_slash_tagged_lines(tmp_path):
    path = write(tmp_path, "b.txt", "The/DET 1/2/NUM cats/NOUN\n\nGo/VERB ./.\n")
    sentences = SlashTaggedReader(path).read()
    assert [(s.words, s.tags, s.line) for s in sentences] == [
        (("The", "1/2", "cats"), ("DET", "NUM", "NOUN"), 1), (("Go", "."), ("VERB", "."), 3)]


def test_slash_tagged_malformed_token(tmp_path):
    path = write(tmp_path, "b.txt", "ok/X\nThe/DET cats\nfine/Y\n")
    with pytest.raises(DataFormatError, match=located(path, 2,
                                                      "token 2 'cats' is not word/TAG")):
        list(SlashTaggedReader(path))
    reader = SlashTaggedReader(path, on_error="skip")
    assert [s.words for s in reader] == [("ok",), ("fine",)] and reader.skipped == 1


# --- seq2seq pairs -------------------------------------------------------------------------

def test_pairs_and_their_errors(tmp_path):
    path = write(tmp_path, "p.tsv", "5 mai 2001\t2001-05-05\n\nno tab here\n\tx\nb\tc\textra\n")
    with pytest.raises(DataFormatError, match=located(path, 3,
                                                      "expected 2 '\\t'-separated fields, got 1")):
        list(PairReader(path))
    reader = PairReader(path, on_error="skip")
    assert [(p.source, p.target, p.line) for p in reader] == [
        ("5 mai 2001", "2001-05-05", 1), ("b", "c", 5)]
    assert reader.skipped == 2 and reader.skip_log.errors[1].reason == "empty source field"


# --- time series ---------------------------------------------------------------------------

def test_series_with_time_column_and_many_value_columns(tmp_path):
    path = write(tmp_path, "s.csv", "date,a,b\n2000-01,1,10\n2000-02,2.5,-3e1\n")
    series = SeriesReader(path, time_column="date").read_series()
    assert series.columns == ("a", "b") and series.times == ("2000-01", "2000-02")
    np.testing.assert_array_equal(series.values, [[1, 10], [2.5, -30]])
    only_b = SeriesReader(path, value_columns="b").read_series()
    assert only_b.times is None and only_b.values.shape == (2, 1)


def test_series_bad_values_and_missing_columns(tmp_path):
    path = write(tmp_path, "s.csv", "t,value\n1,3\n2,NA\n3,inf\n4,5\n")
    with pytest.raises(DataFormatError, match=located(
            path, 3, "column 'value' holds 'NA', which is not a number; expected a finite number "
                     "(fill or interpolate missing values; data.on_error: skip drops such rows "
                     "only at the start or end of a series)")):
        SeriesReader(path, time_column="t").read_series()
    # Skipping rows 3-4 would make steps 1 and 4 adjacent: refused, naming the first dropped row.
    with pytest.raises(DataFormatError, match=re.escape(
            f"{path}:5: on_error=skip dropped 2 row(s) inside the series before this line "
            "(first: line 3: column 'value' holds 'NA'")):
        SeriesReader(path, time_column="t", on_error="skip").read_series()
    with pytest.raises(DataFormatError, match=r"missing column\(s\) \['price'\]; the header has "
                                              r"\['t', 'value'\]"):
        SeriesReader(path, value_columns=["price"]).read_series()
    header_only = write(tmp_path, "h.csv", "t,value\n")
    with pytest.raises(DataFormatError, match=located(header_only, None,
                                                      "no data rows after the header")):
        SeriesReader(header_only).read_series()


# --- property tests: parsers invert writers -------------------------------------------------

_WORD = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")),
                min_size=1, max_size=8).filter(lambda w: not w.isspace() and w.split() == [w])
_TAG = st.from_regex(r"[A-Z.]{1,4}", fullmatch=True)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.tuples(_WORD, _TAG), min_size=1, max_size=6), min_size=1,
                max_size=5))
def test_slash_tagged_parser_inverts_the_writer(tmp_path, sentences):
    path = tmp_path / "prop.txt"
    path.write_text("".join(" ".join(f"{w}/{t}" for w, t in s) + "\n" for s in sentences),
                    encoding="utf-8")
    parsed = SlashTaggedReader(path).read()
    assert [list(zip(s.words, s.tags, strict=True)) for s in parsed] == sentences


_FIELD = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"),
                 min_size=1, max_size=20).filter(lambda t: t.strip() == t and t.strip())


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_FIELD, _FIELD), min_size=1, max_size=8))
def test_csv_parser_inverts_the_csv_writer(tmp_path, rows):
    import csv

    path = tmp_path / "prop.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    assert [(r.text, r.label) for r in LabelledTextReader(path)] == rows
