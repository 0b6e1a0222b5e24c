"""The attribute oracle: caption parsing, relevance and the simulated annotator."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from hpbench.catalog import oracle
from hpbench.catalog.demo import build_demo_spec, make_demo_dataset
from hpbench.catalog.oracle import (
    SimulatedAnnotator,
    annotator_draw,
    oracle_prefers,
    relevance,
    requested_attributes,
    requested_met,
    satisfies,
    set_relevance,
)

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
        assert relevance(target, reference, requested) == 1.0
        assert requested_met(reference, requested) == 0
        assert relevance(reference, reference, requested) == pytest.approx(oracle.KEEP_WEIGHT)


def test_every_caption_written_to_disk_parses_and_its_target_meets_it(tmp_path):
    make_demo_dataset(tmp_path, seed=5, per_category=20)
    attributes = json.loads((tmp_path / "attributes.json").read_text())
    checked = 0
    for path in sorted((tmp_path / "captions").iterdir()):
        for entry in json.loads(path.read_text()):
            requested = requested_attributes(entry["captions"], attributes[entry["candidate"]])
            assert 1 <= len(requested) <= 3
            if "target" in entry:
                assert satisfies(attributes[entry["target"]], attributes[entry["candidate"]], requested)
            checked += 1
    assert checked >= 40


def test_the_generator_uses_several_phrasings_and_comparatives():
    spec = build_demo_spec(seed=0, per_category=100)
    text = " | ".join(c for q in spec.queries for c in q.captions)
    for phrase in ("is shorter", "is longer", "has longer sleeves", " with ", " and ", " instead of ",
                   " rather than ", "is otherwise the same"):
        assert phrase in text, phrase


def test_captions_never_repeat_each_other_and_read_as_sentences():
    spec = build_demo_spec(seed=0, per_category=400)
    for query in spec.queries:
        first, second = query.captions
        asked = [
            {p.attribute for p in oracle.parse_caption(caption)} - {oracle.KEEP} for caption in query.captions
        ]
        assert not asked[0] & asked[1], query.captions  # no attribute asked twice ("has no sleeves" / "with no ...")
        assert asked[0] | asked[1] == set(query.requested)
        for caption in (first, second):
            assert caption.split()[0] in {"is", "has", "comes", "keeps", "looks", "loses"}, caption  # a verb first
            assert " a orange" not in caption and " in colour" not in caption and " one" not in caption
            assert " and with " not in caption, caption


def test_most_requested_changes_read_against_the_reference_as_fashioniq_captions_do():
    spec = build_demo_spec(seed=0, per_category=400)
    clauses = [p for q in spec.queries for c in q.captions for p in oracle.parse_caption(c) if p.attribute != "keep"]
    relative = [p for p in clauses if p.value is None or p.instead_of is not None]
    assert 0.6 < len(relative) / len(clauses) < 0.85


def test_an_instead_of_phrase_names_the_references_value():
    spec = build_demo_spec(seed=0, per_category=400)
    for query in spec.queries:
        reference = spec.attributes[query.candidate]
        for caption in query.captions:
            for phrase in oracle.parse_caption(caption):
                if phrase.instead_of is not None:
                    assert reference[phrase.attribute] == phrase.instead_of, (caption, reference)


def test_every_phrase_of_the_grammar_parses_to_its_own_meaning():
    for phrase in oracle.PHRASES:
        if "{ref}" in phrase.text:
            texts = [phrase.text.format(colour=c, ref=r) for c in oracle.COLOURS for r in oracle.COLOURS if r != c]
        elif "{colour}" in phrase.text:
            texts = [phrase.text.format(colour=c) for c in oracle.COLOURS]
        else:
            texts = [phrase.text]
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
    assert requested_attributes(["is red", "is in red"]) == {"colour": "red"}
    assert requested_attributes(["is red instead of blue", "is otherwise the same"]) == {"colour": "red"}


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


#: The issue's example: a blue striped short-sleeved dress, "has long sleeves".
REFERENCE = {
    "category": "dress",
    "colour": "blue",
    "pattern": "stripes",
    "sleeves": "short",
    "neckline": "round",
    "length": "knee",
}
LONG_SLEEVES = {"sleeves": "long"}
MET_AND_KEPT = REFERENCE | {"sleeves": "long"}
MET_BUT_CHANGED = {
    "category": "dress",
    "colour": "red",
    "pattern": "plain",
    "sleeves": "long",
    "neckline": "v-neck",
    "length": "short",
}
NOT_MET = REFERENCE  # the reference itself: everything kept, the request ignored


def test_met_and_kept_beats_met_but_changed_beats_not_met():
    assert relevance(MET_AND_KEPT, REFERENCE, LONG_SLEEVES) == pytest.approx(1.0)
    assert relevance(MET_BUT_CHANGED, REFERENCE, LONG_SLEEVES) == pytest.approx(2 / 3)
    assert relevance(NOT_MET, REFERENCE, LONG_SLEEVES) == pytest.approx(1 / 3)
    assert relevance(NOT_MET | {"colour": "red"}, REFERENCE, LONG_SLEEVES) == pytest.approx(1 / 3 * 3 / 4)


def test_the_docstrings_worked_example_holds():
    one_change = MET_AND_KEPT | {"neckline": "v-neck"}
    assert relevance(one_change, REFERENCE, LONG_SLEEVES) == pytest.approx(2 / 3 + 1 / 3 * 3 / 4)
    assert relevance(MET_AND_KEPT | {"category": "shirt"}, REFERENCE, LONG_SLEEVES) == 0.0


def test_the_ordering_holds_for_every_request_size_and_weight():
    requests = [
        {"colour": "red"},
        {"colour": "red", "pattern": "dots"},
        {"colour": "red", "pattern": "dots", "length": "long"},
    ]
    for requested in requests:
        kept = REFERENCE | requested
        changed = {a: v for a, v in kept.items()} | {
            a: next(x for x in oracle.attribute_values(a, "dress") if x != REFERENCE[a])
            for a in oracle.ATTRIBUTES
            if a not in requested
        }
        for weight in (0.0, 0.2, oracle.KEEP_WEIGHT, 0.45):
            met_kept = relevance(kept, REFERENCE, requested, keep_weight=weight)
            met_changed = relevance(changed, REFERENCE, requested, keep_weight=weight)
            not_met = relevance(REFERENCE, REFERENCE, requested, keep_weight=weight)
            assert met_kept >= met_changed > not_met, (requested, weight)
            if weight:
                assert met_kept > met_changed


def test_each_requested_attribute_weighs_more_than_each_unmentioned_one():
    requested = {"colour": "red", "pattern": "dots", "length": "long"}
    full = REFERENCE | requested
    miss_requested = full | {"colour": "green"}
    miss_unmentioned = full | {"neckline": "collar"}
    assert relevance(miss_requested, REFERENCE, requested) < relevance(miss_unmentioned, REFERENCE, requested)


def test_relevance_rejects_a_keep_weight_that_would_outweigh_the_request():
    with pytest.raises(ValueError, match="keep_weight must be in"):
        relevance(REFERENCE, REFERENCE, LONG_SLEEVES, keep_weight=0.5)


def test_requested_met_counts_the_requested_attributes_an_image_meets():
    requested = {"colour": "blue", "length": "short", "pattern": "stripes"}
    assert requested_met(DRESS_KNEE, requested) == 1
    assert requested_met(DRESS_KNEE | {"length": "short", "pattern": "stripes"}, requested) == 3
    assert requested_met({}, requested) == 0


def test_an_image_satisfies_a_query_with_the_request_met_and_at_most_one_other_change():
    assert satisfies(MET_AND_KEPT, REFERENCE, LONG_SLEEVES)
    assert satisfies(MET_AND_KEPT | {"neckline": "collar"}, REFERENCE, LONG_SLEEVES)
    assert not satisfies(MET_AND_KEPT | {"neckline": "collar", "colour": "red"}, REFERENCE, LONG_SLEEVES)
    assert not satisfies(MET_BUT_CHANGED, REFERENCE, LONG_SLEEVES)
    assert not satisfies(NOT_MET, REFERENCE, LONG_SLEEVES)
    assert not satisfies(MET_AND_KEPT | {"category": "shirt"}, REFERENCE, LONG_SLEEVES)


def test_set_relevance_is_the_mean_over_the_set():
    images = [MET_AND_KEPT, MET_BUT_CHANGED, NOT_MET]
    assert set_relevance(images, REFERENCE, LONG_SLEEVES) == pytest.approx((1 + 2 / 3 + 1 / 3) / 3)
    with pytest.raises(ValueError, match="empty result set"):
        set_relevance([], REFERENCE, LONG_SLEEVES)


def test_the_oracle_prefers_the_set_that_meets_the_request_and_keeps_the_rest():
    keeps = [MET_AND_KEPT, MET_AND_KEPT]
    text_only = [MET_BUT_CHANGED, MET_BUT_CHANGED]  # what a text-only model retrieves
    image_only = [NOT_MET, NOT_MET]  # what an image-only model retrieves
    assert oracle_prefers(keeps, text_only, REFERENCE, LONG_SLEEVES) == "a"
    assert oracle_prefers(text_only, keeps, REFERENCE, LONG_SLEEVES) == "b"
    assert oracle_prefers(text_only, image_only, REFERENCE, LONG_SLEEVES) == "a"
    assert oracle_prefers(keeps, list(reversed(keeps)), REFERENCE, LONG_SLEEVES) == "tie"


def test_noise_gives_reproducible_random_answers():
    better, worse = [MET_AND_KEPT], [NOT_MET]
    rng = random.Random(7)
    noisy = [oracle_prefers(better, worse, REFERENCE, LONG_SLEEVES, noise=1.0, rng=rng) for _ in range(300)]
    assert set(noisy) == {"a", "b", "tie"}
    rng = random.Random(7)
    assert [oracle_prefers(better, worse, REFERENCE, LONG_SLEEVES, noise=1.0, rng=rng) for _ in range(300)] == noisy
    rng = random.Random(7)
    some_noise = Counter(
        oracle_prefers(better, worse, REFERENCE, LONG_SLEEVES, noise=0.3, rng=rng) for _ in range(1000)
    )
    assert 0.75 < some_noise["a"] / 1000 < 0.85  # 0.7 truthful + 0.3 / 3 random "a"


def test_noise_outside_zero_to_one_is_rejected():
    with pytest.raises(ValueError, match="noise must be between 0 and 1"):
        oracle_prefers([DRESS_KNEE], [DRESS_KNEE], DRESS_KNEE, {"colour": "red"}, noise=1.5)
    with pytest.raises(ValueError, match="noise must be between 0 and 1"):
        annotator_draw(random.Random(0), noise=-0.1)


def test_an_annotator_who_cares_less_about_the_rest_can_judge_differently():
    requested = {"colour": "red", "pattern": "dots"}
    all_met_rest_changed = [REFERENCE | requested | {"sleeves": "long", "neckline": "collar", "length": "long"}]
    half_met_rest_kept = [REFERENCE | {"colour": "red"}]
    strict = SimulatedAnnotator(keep_weight=0.45)
    lenient = SimulatedAnnotator(keep_weight=0.1)
    assert strict.prefers(all_met_rest_changed, half_met_rest_kept, REFERENCE, requested) == "b"
    assert lenient.prefers(all_met_rest_changed, half_met_rest_kept, REFERENCE, requested) == "a"


def test_a_side_biased_annotator_picks_the_first_set_more_often():
    rng = random.Random(3)
    biased = SimulatedAnnotator(side_bias=0.5)
    answers = Counter(biased.prefers([NOT_MET], [MET_AND_KEPT], REFERENCE, LONG_SLEEVES, rng=rng) for _ in range(2000))
    assert 0.45 < answers["a"] / 2000 < 0.55
    assert answers["b"] + answers["a"] == 2000


def test_a_drawn_crowd_disagrees_on_close_calls_but_not_on_clear_ones():
    rng = random.Random(0)
    crowd = [annotator_draw(rng, noise=0.1) for _ in range(9)]
    assert len({person.keep_weight for person in crowd}) == 9
    close_a = [MET_AND_KEPT | {"neckline": "collar"}] * 4 + [MET_BUT_CHANGED]
    close_b = [MET_AND_KEPT] * 3 + [MET_BUT_CHANGED] * 2
    clear = Counter(
        p.prefers([MET_AND_KEPT] * 5, [NOT_MET] * 5, REFERENCE, LONG_SLEEVES, rng=rng)
        for p in crowd
        for _ in range(100)
    )
    close = Counter(p.prefers(close_a, close_b, REFERENCE, LONG_SLEEVES, rng=rng) for p in crowd for _ in range(100))
    assert clear["a"] / 900 > 0.85
    assert 0.1 < close["a"] / 900 < 0.9 and 0.1 < close["b"] / 900 < 0.9


def test_annotator_settings_are_checked():
    with pytest.raises(ValueError, match="lapse must be between 0 and 1"):
        SimulatedAnnotator(lapse=2.0)
    with pytest.raises(ValueError, match="perception must not be negative"):
        SimulatedAnnotator(perception=-1.0)


def test_a_noiseless_crowd_differs_only_in_how_much_it_cares_about_the_rest():
    rng = random.Random(1)
    crowd = [annotator_draw(rng, noise=0.0) for _ in range(5)]
    assert all((p.lapse, p.perception, p.tie_margin, p.side_bias) == (0, 0, 0, 0) for p in crowd)
    assert all(0.2 <= p.keep_weight <= 0.45 for p in crowd)
