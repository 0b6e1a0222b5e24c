"""The attribute oracle: caption parsing, relevance and the simulated annotator."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from hpbench.catalog import oracle
from hpbench.catalog.demo import build_demo_spec, make_demo_dataset
from hpbench.catalog.oracle import oracle_prefers, relevance, requested_attributes, set_relevance

DRESS_KNEE = {
    "category": "dress",
    "colour": "blue",
    "pattern": "plain",
    "sleeves": "short",
    "neckline": "round",
    "length": "knee",
}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_generated_query_parses_back_to_what_the_generator_intended(seed):
    spec = build_demo_spec(seed=seed, per_category=30)
    assert len(spec.queries) >= 80
    for query in spec.queries:
        reference, target = spec.attributes[query.candidate], spec.attributes[query.target]
        requested = requested_attributes(list(query.captions), reference)
        assert requested == query.requested, query
        assert relevance(target, requested) == len(requested)
        assert relevance(reference, requested) == 0


def test_every_caption_written_to_disk_parses_and_its_target_meets_it(tmp_path):
    make_demo_dataset(tmp_path, seed=5, per_category=20)
    attributes = json.loads((tmp_path / "attributes.json").read_text())
    checked = 0
    for path in sorted((tmp_path / "captions").iterdir()):
        for entry in json.loads(path.read_text()):
            requested = requested_attributes(entry["captions"], attributes[entry["candidate"]])
            assert 1 <= len(requested) <= 3
            if "target" in entry:
                assert relevance(attributes[entry["target"]], requested) == len(requested)
            checked += 1
    assert checked >= 40


def test_the_generator_uses_several_phrasings_and_comparatives():
    spec = build_demo_spec(seed=0, per_category=100)
    text = " | ".join(c for q in spec.queries for c in q.captions)
    for phrase in ("is shorter", "is longer", "has longer sleeves", " with ", " and ", "is a red one"):
        assert phrase in text, phrase


def test_every_phrase_of_the_grammar_parses_to_its_own_meaning():
    for phrase in oracle.PHRASES:
        texts = [phrase.text.format(colour=c) for c in oracle.COLOURS] if "{colour}" in phrase.text else [phrase.text]
        for text in texts:
            (parsed,) = oracle.parse_caption(text)
            assert (parsed.text, parsed.attribute, parsed.step) == (text, phrase.attribute, phrase.step)


def test_it_parses_joined_clauses_whatever_the_case_and_final_full_stop():
    assert requested_attributes(["Is red with long sleeves.", "has stripes and is floor-length"]) == {
        "colour": "red",
        "pattern": "stripes",
        "sleeves": "long",
        "length": "long",
    }
    assert requested_attributes(["is checked, has a collar", "is in green, and with no sleeves"]) == {
        "colour": "green",
        "pattern": "checks",
        "sleeves": "sleeveless",
        "neckline": "collar",
    }


def test_a_restated_attribute_is_requested_once():
    assert requested_attributes(["is red", "is a red one"]) == {"colour": "red"}


@pytest.mark.parametrize(
    ("reference", "caption", "expected"),
    [
        (DRESS_KNEE, "is shorter", {"length": "short"}),
        (DRESS_KNEE, "is longer", {"length": "long"}),
        (DRESS_KNEE | {"length": "short"}, "is much longer", {"length": "long"}),
        (DRESS_KNEE | {"category": "toptee", "length": "regular"}, "is shorter", {"length": "cropped"}),
        (DRESS_KNEE | {"sleeves": "sleeveless"}, "has longer sleeves", {"sleeves": "short"}),
        (DRESS_KNEE, "with shorter sleeves", {"sleeves": "sleeveless"}),
    ],
)
def test_comparatives_resolve_against_the_reference(reference, caption, expected):
    assert requested_attributes([caption], reference) == expected


def test_a_comparative_without_a_reference_is_an_error_naming_the_phrase():
    with pytest.raises(ValueError, match="'is shorter' is relative to the reference"):
        requested_attributes(["is red", "is shorter"])


def test_a_comparative_past_the_end_of_the_scale_is_an_error():
    with pytest.raises(ValueError, match="'is longer' is impossible.*already 'long'"):
        requested_attributes(["is longer"], DRESS_KNEE | {"length": "long"})


def test_an_unknown_phrase_is_an_error_naming_it():
    with pytest.raises(ValueError, match="cannot parse 'with sparkles' in caption 'is red with sparkles'"):
        requested_attributes(["is red with sparkles", "is red"])
    with pytest.raises(ValueError, match="empty caption"):
        requested_attributes(["is red", "  "])


def test_captions_that_disagree_are_an_error():
    with pytest.raises(ValueError, match="captions disagree on colour: 'red' and 'blue'"):
        requested_attributes(["is red", "is blue"])


def test_relevance_counts_the_requested_attributes_an_image_meets():
    requested = {"colour": "blue", "length": "short", "pattern": "stripes"}
    assert relevance(DRESS_KNEE, requested) == 1
    assert relevance(DRESS_KNEE | {"length": "short", "pattern": "stripes"}, requested) == 3
    assert relevance({}, requested) == 0


def test_set_relevance_is_the_mean_over_the_set():
    requested = {"colour": "blue", "length": "short"}
    images = [DRESS_KNEE, DRESS_KNEE | {"length": "short"}, DRESS_KNEE | {"colour": "red"}]
    assert set_relevance(images, requested) == pytest.approx((1 + 2 + 0) / 3)
    with pytest.raises(ValueError, match="empty result set"):
        set_relevance([], requested)


def test_the_oracle_prefers_the_set_meeting_more_requested_attributes():
    requested = {"colour": "blue", "length": "short"}
    better = [DRESS_KNEE | {"length": "short"}, DRESS_KNEE]
    worse = [DRESS_KNEE, DRESS_KNEE | {"colour": "red"}]
    assert oracle_prefers(better, worse, requested) == "a"
    assert oracle_prefers(worse, better, requested) == "b"
    assert oracle_prefers(better, list(reversed(better)), requested) == "tie"


def test_noise_gives_reproducible_random_answers():
    requested = {"colour": "blue"}
    better, worse = [DRESS_KNEE], [DRESS_KNEE | {"colour": "red"}]
    rng = random.Random(7)
    noisy = [oracle_prefers(better, worse, requested, noise=1.0, rng=rng) for _ in range(300)]
    assert set(noisy) == {"a", "b", "tie"}
    rng = random.Random(7)
    assert [oracle_prefers(better, worse, requested, noise=1.0, rng=rng) for _ in range(300)] == noisy
    rng = random.Random(7)
    some_noise = Counter(oracle_prefers(better, worse, requested, noise=0.3, rng=rng) for _ in range(1000))
    assert 0.75 < some_noise["a"] / 1000 < 0.85  # 0.7 truthful + 0.3 / 3 random "a"


def test_noise_outside_zero_to_one_is_rejected():
    with pytest.raises(ValueError, match="noise must be between 0 and 1"):
        oracle_prefers([DRESS_KNEE], [DRESS_KNEE], {"colour": "red"}, noise=1.5)
