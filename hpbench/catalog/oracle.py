"""The demo dataset's attribute vocabulary, caption grammar and relevance oracle.

Pure Python (no Django, no torch): everything works on plain attribute dicts such as the ones in a demo
dataset's ``attributes.json``::

    {"category": "dress", "colour": "red", "pattern": "stripes", "sleeves": "long",
     "neckline": "v-neck", "length": "knee"}

The generator (:mod:`hpbench.catalog.demo`) writes captions only from :data:`PHRASES`, and
:func:`requested_attributes` parses them back with the same table, so the two cannot drift apart.
Later features use the oracle to simulate annotators and to build gold tasks: an image's relevance to a
query is the number of requested attributes it meets.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

CATEGORIES: tuple[str, ...] = ("dress", "shirt", "toptee")
TOP_CATEGORIES: frozenset[str] = frozenset({"shirt", "toptee"})

COLOURS: tuple[str, ...] = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "black")
PATTERNS: tuple[str, ...] = ("plain", "stripes", "dots", "checks")
#: Ordered from shortest to longest: comparative phrases step along this scale.
SLEEVES: tuple[str, ...] = ("sleeveless", "short", "long")
NECKLINES: tuple[str, ...] = ("round", "v-neck", "collar")
#: Length scales per category, shortest first.
LENGTHS: dict[str, tuple[str, ...]] = {
    "dress": ("short", "knee", "long"),
    "shirt": ("cropped", "regular", "long"),
    "toptee": ("cropped", "regular", "long"),
}

#: The attributes a query can request, in the order captions and results list them.
ATTRIBUTES: tuple[str, ...] = ("colour", "pattern", "sleeves", "neckline", "length")


def attribute_values(attribute: str, category: str) -> tuple[str, ...]:
    """The values ``attribute`` can take for an image of ``category``; ValueError for an unknown one."""
    if category not in LENGTHS:
        raise ValueError(f"unknown category {category!r} (expected one of {', '.join(CATEGORIES)})")
    scales: dict[str, tuple[str, ...]] = {
        "colour": COLOURS,
        "pattern": PATTERNS,
        "sleeves": SLEEVES,
        "neckline": NECKLINES,
        "length": LENGTHS[category],
    }
    if attribute not in scales:
        raise ValueError(f"unknown attribute {attribute!r} (expected one of {', '.join(ATTRIBUTES)})")
    return scales[attribute]


@dataclass(frozen=True)
class Phrase:
    """One caption clause and what it requests.

    ``value`` is the absolute value requested, or None for a comparative phrase, which moves ``step``
    places along the attribute's scale from the reference's value. ``categories`` limits where the
    generator uses the phrase ("is a mini dress" only for dresses); the parser accepts it anywhere.
    A ``text`` containing ``{colour}`` stands for one phrase per colour.
    """

    text: str
    attribute: str
    value: str | None = None
    step: int = 0
    categories: frozenset[str] = frozenset(CATEGORIES)

    @property
    def is_with_clause(self) -> bool:
        """True for clauses that attach to the previous one with a plain space ("is red with stripes")."""
        return self.text.startswith("with ")


_DRESS = frozenset({"dress"})
_TOPS = TOP_CATEGORIES

#: The whole caption grammar: every clause a generated caption may contain.
PHRASES: tuple[Phrase, ...] = (
    # colour
    Phrase("is {colour}", "colour"),
    Phrase("is a {colour} one", "colour"),
    Phrase("is {colour} in colour", "colour"),
    Phrase("is in {colour}", "colour"),
    # pattern
    Phrase("is plain", "pattern", "plain"),
    Phrase("has no pattern", "pattern", "plain"),
    Phrase("with no pattern", "pattern", "plain"),
    Phrase("has stripes", "pattern", "stripes"),
    Phrase("is striped", "pattern", "stripes"),
    Phrase("with stripes", "pattern", "stripes"),
    Phrase("has polka dots", "pattern", "dots"),
    Phrase("is dotted", "pattern", "dots"),
    Phrase("with dots", "pattern", "dots"),
    Phrase("has checks", "pattern", "checks"),
    Phrase("is checked", "pattern", "checks"),
    Phrase("with a checked pattern", "pattern", "checks"),
    # sleeves
    Phrase("is sleeveless", "sleeves", "sleeveless"),
    Phrase("has no sleeves", "sleeves", "sleeveless"),
    Phrase("with no sleeves", "sleeves", "sleeveless"),
    Phrase("has short sleeves", "sleeves", "short"),
    Phrase("is short-sleeved", "sleeves", "short"),
    Phrase("with short sleeves", "sleeves", "short"),
    Phrase("has long sleeves", "sleeves", "long"),
    Phrase("is long-sleeved", "sleeves", "long"),
    Phrase("with long sleeves", "sleeves", "long"),
    Phrase("has longer sleeves", "sleeves", step=1),
    Phrase("with longer sleeves", "sleeves", step=1),
    Phrase("has shorter sleeves", "sleeves", step=-1),
    Phrase("with shorter sleeves", "sleeves", step=-1),
    # neckline
    Phrase("has a round neck", "neckline", "round"),
    Phrase("has a crew neck", "neckline", "round"),
    Phrase("with a round neckline", "neckline", "round"),
    Phrase("has a v-neck", "neckline", "v-neck"),
    Phrase("is v-necked", "neckline", "v-neck"),
    Phrase("with a v-neckline", "neckline", "v-neck"),
    Phrase("has a collar", "neckline", "collar"),
    Phrase("is collared", "neckline", "collar"),
    Phrase("with a collar", "neckline", "collar"),
    # length: dresses
    Phrase("is short", "length", "short", categories=_DRESS),
    Phrase("is a mini dress", "length", "short", categories=_DRESS),
    Phrase("is above the knee", "length", "short", categories=_DRESS),
    Phrase("is knee-length", "length", "knee", categories=_DRESS),
    Phrase("reaches the knee", "length", "knee", categories=_DRESS),
    Phrase("is floor-length", "length", "long", categories=_DRESS),
    Phrase("is a maxi dress", "length", "long", categories=_DRESS),
    # length: tops
    Phrase("is cropped", "length", "cropped", categories=_TOPS),
    Phrase("is a crop top", "length", "cropped", categories=_TOPS),
    Phrase("is regular length", "length", "regular", categories=_TOPS),
    Phrase("is hip-length", "length", "regular", categories=_TOPS),
    Phrase("is tunic-length", "length", "long", categories=_TOPS),
    Phrase("is a longline top", "length", "long", categories=_TOPS),
    # length: both
    Phrase("is long", "length", "long"),
    Phrase("is shorter", "length", step=-1),
    Phrase("is longer", "length", step=1),
    Phrase("is much shorter", "length", step=-2),
    Phrase("is much longer", "length", step=2),
)

#: How clauses are joined inside one caption. A "with" clause may also follow after a single space.
SEPARATORS: tuple[str, ...] = (", and ", ", ", " and ")


def _expand(phrases: Iterable[Phrase]) -> dict[str, Phrase]:
    """Every literal clause text, with ``{colour}`` expanded, mapped to its (concrete) phrase."""
    table: dict[str, Phrase] = {}
    for phrase in phrases:
        if "{colour}" in phrase.text:
            for colour in COLOURS:
                text = phrase.text.format(colour=colour)
                table[text] = Phrase(text, phrase.attribute, colour, phrase.step, phrase.categories)
        else:
            table[phrase.text] = phrase
    return table


_CLAUSES: dict[str, Phrase] = _expand(PHRASES)
# Longest first, so "is long-sleeved" wins over "is long" and "is much shorter" over nothing.
_CLAUSE_TEXTS: tuple[str, ...] = tuple(sorted(_CLAUSES, key=len, reverse=True))
_SEPARATOR_RE = re.compile(r", and |, | and | (?=with )")


def phrases_for(attribute: str, value: str, *, category: str) -> list[Phrase]:
    """The absolute phrases that request ``attribute == value`` for ``category`` (concrete, colour filled in)."""
    return [
        p
        for p in _CLAUSES.values()
        if p.attribute == attribute and p.value == value and p.step == 0 and category in p.categories
    ]


def comparative_phrases(attribute: str, step: int, *, category: str) -> list[Phrase]:
    """The comparative phrases that move ``attribute`` by ``step`` places along its scale."""
    return [p for p in _CLAUSES.values() if p.attribute == attribute and p.step == step and category in p.categories]


def parse_caption(caption: str) -> list[Phrase]:
    """Split one generated caption into its clauses.

    Raises ValueError naming the part of the caption that no phrase of :data:`PHRASES` matches.
    """
    text = " ".join(caption.lower().split()).rstrip(".").strip()
    if not text:
        raise ValueError(f"empty caption {caption!r}")
    clauses: list[Phrase] = []
    pos = 0
    while pos < len(text):
        for clause in _CLAUSE_TEXTS:
            if not text.startswith(clause, pos):
                continue
            end = pos + len(clause)
            if end == len(text):
                clauses.append(_CLAUSES[clause])
                return clauses
            separator = _SEPARATOR_RE.match(text, end)
            if separator:
                clauses.append(_CLAUSES[clause])
                pos = separator.end()
                break
        else:
            raise ValueError(f"cannot parse {text[pos:]!r} in caption {caption!r}")
    raise ValueError(f"caption {caption!r} ends with a separator")


def _resolve(phrase: Phrase, reference_attributes: Mapping[str, str] | None) -> str:
    if phrase.value is not None:
        return phrase.value
    if reference_attributes is None:
        raise ValueError(f"{phrase.text!r} is relative to the reference: pass the reference's attributes")
    category = reference_attributes.get("category", "")
    current = reference_attributes.get(phrase.attribute)
    scale = attribute_values(phrase.attribute, category)
    if current not in scale:
        raise ValueError(
            f"{phrase.text!r}: the reference's {phrase.attribute} {current!r} is not on the {category} scale {scale}"
        )
    index = scale.index(current) + phrase.step
    if not 0 <= index < len(scale):
        raise ValueError(f"{phrase.text!r} is impossible: the reference's {phrase.attribute} is already {current!r}")
    return scale[index]


def requested_attributes(
    captions: Sequence[str], reference_attributes: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The attribute values a query's captions request of the target, e.g. ``{"colour": "red"}``.

    Comparative phrases ("is shorter", "has longer sleeves") resolve against ``reference_attributes``
    (which must then hold ``category`` and the attribute). The result lists attributes in
    :data:`ATTRIBUTES` order. Raises ValueError naming the phrase that cannot be parsed or resolved,
    or the attribute on which the captions disagree.
    """
    found: dict[str, str] = {}
    for caption in captions:
        for phrase in parse_caption(caption):
            value = _resolve(phrase, reference_attributes)
            previous = found.setdefault(phrase.attribute, value)
            if previous != value:
                raise ValueError(
                    f"captions disagree on {phrase.attribute}: {previous!r} and {value!r} ({phrase.text!r})"
                )
    return {attribute: found[attribute] for attribute in ATTRIBUTES if attribute in found}


def relevance(image_attributes: Mapping[str, str], requested: Mapping[str, str]) -> int:
    """How many of the requested attribute values the image has (0 .. ``len(requested)``)."""
    return sum(1 for attribute, value in requested.items() if image_attributes.get(attribute) == value)


def set_relevance(images_attributes: Sequence[Mapping[str, str]], requested: Mapping[str, str]) -> float:
    """The mean :func:`relevance` over a result set; ValueError for an empty set."""
    if not images_attributes:
        raise ValueError("set_relevance of an empty result set")
    return sum(relevance(image, requested) for image in images_attributes) / len(images_attributes)


ANSWERS: tuple[str, ...] = ("a", "b", "tie")


def oracle_prefers(
    set_a_attrs: Sequence[Mapping[str, str]],
    set_b_attrs: Sequence[Mapping[str, str]],
    requested: Mapping[str, str],
    *,
    noise: float = 0.0,
    rng: random.Random | None = None,
) -> str:
    """A simulated annotator's answer: "a", "b" or "tie".

    The answer names the set with the higher :func:`set_relevance` ("tie" when equal). With probability
    ``noise`` (0..1) the answer is instead drawn uniformly from "a", "b" and "tie". Pass ``rng`` for
    reproducible noise. Raises ValueError for a noise outside 0..1 or an empty set.
    """
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be between 0 and 1, got {noise!r}")
    score_a = set_relevance(set_a_attrs, requested)
    score_b = set_relevance(set_b_attrs, requested)
    if noise > 0.0:
        rng = rng or random.Random()
        if rng.random() < noise:
            return rng.choice(ANSWERS)
    if score_a > score_b:
        return "a"
    if score_b > score_a:
        return "b"
    return "tie"
