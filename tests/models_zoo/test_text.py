import pytest

from models_zoo.text import blip_caption_text, cirr_query_text, fashioniq_query_text


def test_fashioniq_text_strips_capitalises_and_joins_as_the_official_code():
    assert fashioniq_query_text(["is red.", " has long sleeves?"]) == "Is red and has long sleeves"
    assert fashioniq_query_text(["  IS Darker ,", "more formal"]) == "Is darker and more formal"


def test_fashioniq_text_strips_only_leading_and_trailing_punctuation():
    assert fashioniq_query_text(["..is, red..", "?blue?"]) == "Is, red and blue"


def test_fashioniq_text_requires_two_captions():
    with pytest.raises(ValueError):
        fashioniq_query_text(["only one"])
    with pytest.raises(ValueError):
        fashioniq_query_text("ab")


def test_cirr_text_is_the_caption_without_surrounding_space():
    assert cirr_query_text("  Show three dogs instead.  ") == "Show three dogs instead."


def test_blip_caption_processor_lowercases_and_drops_punctuation():
    assert blip_caption_text('Is Red!  (With) "long" sleeves.') == "is red with long sleeves"
    assert blip_caption_text("a b c d", max_words=2) == "a b"
