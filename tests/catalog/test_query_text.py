"""The one query-text rule (hpbench/catalog/query_text.py), on hand-written cases."""

from __future__ import annotations

import pytest

from hpbench.catalog.query_text import query_text


def test_fashioniq_joins_its_two_captions_as_the_official_evaluation_does():
    assert query_text(protocol="fashioniq", captions=["is red.", " has long sleeves?"]) == "Is red and has long sleeves"


def test_cirr_keeps_its_caption_as_written_apart_from_surrounding_spaces():
    assert query_text(protocol="cirr", captions=["  Show two of them, on grass.  "]) == "Show two of them, on grass."


def test_an_hp_fashioniq_sentence_is_used_as_released():
    assert query_text(protocol="hpfiq", captions=[" Is darker and has a collar \n"]) == "Is darker and has a collar"


def test_a_fashioniq_query_with_another_number_of_captions_gets_them_joined_with_and():
    assert query_text(protocol="fashioniq", captions=["is red.", "", "is longer?"]) == "is red and is longer"
    assert query_text(protocol="fashioniq", captions=["is red."]) == "is red"


@pytest.mark.parametrize(
    ("protocol", "captions", "message"),
    [
        ("fiq", ["a", "b"], "unknown query protocol 'fiq'"),
        ("cirr", ["one", "two"], "cirr queries have exactly one caption"),
        ("hpfiq", [], "hpfiq queries have exactly one caption"),
        ("fashioniq", "is red", "captions must be a list of strings"),
        ("fashioniq", ["is red", 3], "captions must be a list of strings"),
    ],
)
def test_it_names_what_is_wrong_with_a_query(protocol, captions, message):
    with pytest.raises(ValueError, match=message):
        query_text(protocol=protocol, captions=captions)
