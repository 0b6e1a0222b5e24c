"""The demo dataset's attribute vocabulary, caption grammar and relevance oracle.

Pure Python (no Django, no torch): everything works on plain attribute dicts such as the ones in a demo
dataset's ``attributes.json``::

    {"category": "dress", "colour": "red", "pattern": "stripes", "sleeves": "long",
     "neckline": "v-neck", "length": "knee"}

The generator (:mod:`hpbench.catalog.demo`) writes captions only from :data:`PHRASES`, and
:func:`requested_attributes` parses them back with the same table, so the two cannot drift apart.
:func:`relevance` judges an image as a person would judge it for a composed query: the requested change
met AND the rest of the reference kept (formula, weights and a worked example in its docstring). The gold
tasks, the simulated annotators (:class:`SimulatedAnnotator`, :func:`annotator_draw`) and the demo
benchmark (``bench/demo_models.py``) all judge with it.
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
    places along the attribute's scale from the reference's value. ``instead_of`` is the reference's value a
    relative phrase names ("is red instead of blue"): the generator uses it only for such a reference.
    ``attribute`` :data:`KEEP` marks a clause that requests nothing ("is otherwise the same"). ``categories``
    limits where the generator uses the phrase ("is a mini dress" only for dresses); the parser accepts it
    anywhere. A ``text`` containing ``{colour}`` stands for one phrase per colour (and ``{ref}``, in colour
    phrases, for every other colour the reference may have).
    """

    text: str
    attribute: str
    value: str | None = None
    step: int = 0
    categories: frozenset[str] = frozenset(CATEGORIES)
    instead_of: str | None = None

    @property
    def is_relative(self) -> bool:
        """True for phrases that read against the reference (comparative, "instead of", "without the")."""
        return self.value is None or self.instead_of is not None

    @property
    def is_with_clause(self) -> bool:
        """True for clauses that attach to the previous one with a plain space ("is red with stripes")."""
        return self.text.startswith("with ")


_DRESS = frozenset({"dress"})
_TOPS = TOP_CATEGORIES
_PATTERN_NOUN = {"plain": "plain fabric", "stripes": "stripes", "dots": "dots", "checks": "checks"}
_NECK_NOUN = {"round": "a round neck", "v-neck": "a v-neck", "collar": "a collar"}

#: The whole caption grammar: every clause a generated caption may contain.
PHRASES: tuple[Phrase, ...] = (
    # colour
    Phrase("is {colour}", "colour"),
    Phrase("is in {colour}", "colour"),
    Phrase("is {colour} instead of {ref}", "colour"),
    Phrase("comes in {colour} rather than {ref}", "colour"),
    Phrase("is the same in {colour}", "colour"),
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
    # asking for nothing: the rest of the reference stays as it is
    Phrase("is otherwise the same", "keep"),
    Phrase("keeps everything else", "keep"),
    Phrase("looks the same otherwise", "keep"),
    *(
        # relative to the reference's pattern or neckline: "has stripes instead of dots", "without the checks"
        Phrase(f"{has} instead of {_PATTERN_NOUN[was]}", "pattern", value, instead_of=was)
        for value, has in (("stripes", "has stripes"), ("dots", "has polka dots"), ("checks", "has checks"))
        for was in PATTERNS if was != value
    ),
    *(Phrase(f"{verb} the {_PATTERN_NOUN[was]}", "pattern", "plain", instead_of=was)
      for was in PATTERNS if was != "plain" for verb in ("is without", "loses")),
    *(
        Phrase(f"has {_NECK_NOUN[value]} instead of {_NECK_NOUN[was]}", "neckline", value, instead_of=was)
        for value in NECKLINES for was in NECKLINES if was != value
    ),
)

#: The ``attribute`` of clauses that request nothing.
KEEP = "keep"

#: How clauses are joined inside one caption. A "with" clause may also follow after a single space.
SEPARATORS: tuple[str, ...] = (", and ", ", ", " and ")


def _expand(phrases: Iterable[Phrase]) -> dict[str, Phrase]:
    """Every literal clause text, with ``{colour}`` expanded, mapped to its (concrete) phrase."""
    table: dict[str, Phrase] = {}
    for phrase in phrases:
        if "{ref}" in phrase.text:
            for colour in COLOURS:
                for was in COLOURS:
                    if was != colour:
                        text = phrase.text.format(colour=colour, ref=was)
                        table[text] = Phrase(text, phrase.attribute, colour, phrase.step, phrase.categories, was)
        elif "{colour}" in phrase.text:
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


def phrases_for(attribute: str, value: str, *, category: str, reference_value: str | None = None) -> list[Phrase]:
    """The phrases that request ``attribute == value`` for ``category`` (concrete, colour filled in): the
    absolute ones, and with ``reference_value`` the relative ones naming it ("is red instead of blue")."""
    return [
        p
        for p in _CLAUSES.values()
        if p.attribute == attribute and p.value == value and p.step == 0 and category in p.categories
        and p.instead_of in (None, reference_value)
    ]


def keep_phrases() -> list[Phrase]:
    """The clauses that request nothing ("is otherwise the same")."""
    return [p for p in _CLAUSES.values() if p.attribute == KEEP]


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
            if phrase.attribute == KEEP:
                continue
            value = _resolve(phrase, reference_attributes)
            previous = found.setdefault(phrase.attribute, value)
            if previous != value:
                raise ValueError(
                    f"captions disagree on {phrase.attribute}: {previous!r} and {value!r} ({phrase.text!r})"
                )
    return {attribute: found[attribute] for attribute in ATTRIBUTES if attribute in found}


# --------------------------------------------------------------------------------------------------
# Relevance: what a person wants from a composed query


#: Share of an image's relevance that comes from meeting the request; the rest comes from keeping the
#: reference's other attributes. Below 0.5 for :data:`KEEP_WEIGHT`, so the request always dominates.
REQUEST_WEIGHT: float = 2 / 3
KEEP_WEIGHT: float = 1 - REQUEST_WEIGHT


def requested_met(image_attributes: Mapping[str, str], requested: Mapping[str, str]) -> int:
    """How many of the requested attribute values the image has (0 .. ``len(requested)``)."""
    return sum(1 for attribute, value in requested.items() if image_attributes.get(attribute) == value)


def unmentioned_kept(
    image_attributes: Mapping[str, str], reference_attributes: Mapping[str, str], requested: Mapping[str, str]
) -> tuple[int, int]:
    """``(kept, unmentioned)``: of the :data:`ATTRIBUTES` the request does not mention, how many the image
    shares with the reference, and how many there are."""
    unmentioned = [attribute for attribute in ATTRIBUTES if attribute not in requested]
    kept = sum(1 for attribute in unmentioned if image_attributes.get(attribute) == reference_attributes.get(attribute))
    return kept, len(unmentioned)


def relevance(
    image_attributes: Mapping[str, str],
    reference_attributes: Mapping[str, str],
    requested: Mapping[str, str],
    *,
    keep_weight: float = KEEP_WEIGHT,
) -> float:
    """How well an image answers a composed query "this reference, changed as requested", from 0 to 1.

    A person shown a blue striped short-sleeved dress and "has long sleeves" wants a blue striped
    long-sleeved dress: the requested change, and the rest of the reference kept. So::

        relevance = 0                                               if the category differs from the reference's
        relevance = (1 - w) * met / |requested| + w * kept / |unmentioned|     otherwise

    where ``met`` counts the requested attributes the image has, ``kept`` counts the attributes the request
    does not mention (of :data:`ATTRIBUTES`) on which the image equals the reference, and ``w`` is
    ``keep_weight`` (default :data:`KEEP_WEIGHT` = 1/3; an empty request counts as met, an empty
    unmentioned set as kept). Because ``w < 0.5``, meeting the whole request and changing everything else
    (``1 - w``) still beats keeping everything and meeting none of it (``w``); and each requested attribute
    weighs more than each unmentioned one (with at most 3 requested of 5 attributes,
    ``(1 - w) / 3 > w / 2``).

    Worked example (default weights). Reference: a dress, blue, stripes, short sleeves, round neck, knee
    length; request: ``{"sleeves": "long"}`` (so 1 requested, 4 unmentioned attributes):

    ==========================================================  ====  ====  =========================
    image                                                        met   kept  relevance
    ==========================================================  ====  ====  =========================
    blue striped long-sleeved round-neck knee dress               1/1  4/4   2/3 + 1/3       = 1.000
    blue striped long-sleeved **v-neck** knee dress               1/1  3/4   2/3 + 1/3 * 3/4 = 0.917
    **red plain** long-sleeved **v-neck short** dress             1/1  0/4   2/3             = 0.667
    the reference itself (short sleeves)                          0/1  4/4   1/3             = 0.333
    a blue striped long-sleeved **shirt**                         --    --   0               = 0.000
    ==========================================================  ====  ====  =========================

    Raises ValueError for a ``keep_weight`` outside 0 .. 0.5 (the request must dominate).
    """
    if not 0.0 <= keep_weight < 0.5:
        raise ValueError(f"keep_weight must be in [0, 0.5) so the request dominates, got {keep_weight!r}")
    if image_attributes.get("category") != reference_attributes.get("category"):
        return 0.0
    met_share = requested_met(image_attributes, requested) / len(requested) if requested else 1.0
    kept, unmentioned = unmentioned_kept(image_attributes, reference_attributes, requested)
    kept_share = kept / unmentioned if unmentioned else 1.0
    return (1.0 - keep_weight) * met_share + keep_weight * kept_share


#: How many of the reference's unmentioned attributes an image may change and still satisfy the query.
SATISFY_CHANGES: int = 1


def satisfies(
    image_attributes: Mapping[str, str], reference_attributes: Mapping[str, str], requested: Mapping[str, str]
) -> bool:
    """True when a person would accept the image as an answer: same category as the reference, every
    requested attribute met, and at most :data:`SATISFY_CHANGES` of the unmentioned attributes changed
    (relevance at least ``1 - KEEP_WEIGHT / unmentioned``: 0.917 for one requested attribute, 0.833 for
    three). Gallery images other than the labelled target that satisfy a query are its near-targets: the
    false negatives contrastive training pushes away."""
    if image_attributes.get("category") != reference_attributes.get("category"):
        return False
    if requested_met(image_attributes, requested) != len(requested):
        return False
    kept, unmentioned = unmentioned_kept(image_attributes, reference_attributes, requested)
    return unmentioned - kept <= SATISFY_CHANGES


def set_relevance(
    images_attributes: Sequence[Mapping[str, str]],
    reference_attributes: Mapping[str, str],
    requested: Mapping[str, str],
    *,
    keep_weight: float = KEEP_WEIGHT,
) -> float:
    """The mean :func:`relevance` over a result set; ValueError for an empty set."""
    if not images_attributes:
        raise ValueError("set_relevance of an empty result set")
    return sum(
        relevance(image, reference_attributes, requested, keep_weight=keep_weight) for image in images_attributes
    ) / len(images_attributes)


ANSWERS: tuple[str, ...] = ("a", "b", "tie")


@dataclass(frozen=True)
class SimulatedAnnotator:
    """One simulated person comparing two result sets for a query.

    The person perceives each set's :func:`set_relevance` under their own ``keep_weight`` (how much they
    care that the rest of the reference is kept), blurred by Gaussian noise of standard deviation
    ``perception``; perceived differences of at most ``tie_margin`` are a "tie". Independently of the sets,
    with probability ``lapse`` they answer uniformly at random ("a", "b", "tie"), and otherwise with
    probability ``side_bias`` they pick "a" (the set shown first) without comparing. The defaults are the
    noise-free oracle: the set of higher relevance wins, equal relevance is a tie.
    """

    keep_weight: float = KEEP_WEIGHT
    perception: float = 0.0
    tie_margin: float = 0.0
    side_bias: float = 0.0
    lapse: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.keep_weight < 0.5:
            raise ValueError(f"keep_weight must be in [0, 0.5), got {self.keep_weight!r}")
        for name in ("perception", "tie_margin"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)!r}")
        for name in ("side_bias", "lapse"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)!r}")

    def prefers(
        self,
        set_a_attrs: Sequence[Mapping[str, str]],
        set_b_attrs: Sequence[Mapping[str, str]],
        reference_attributes: Mapping[str, str],
        requested: Mapping[str, str],
        *,
        rng: random.Random | None = None,
    ) -> str:
        """The answer, "a", "b" or "tie". ``rng`` makes the noise reproducible (needed only when there is noise)."""
        score_a = set_relevance(set_a_attrs, reference_attributes, requested, keep_weight=self.keep_weight)
        score_b = set_relevance(set_b_attrs, reference_attributes, requested, keep_weight=self.keep_weight)
        if self.lapse or self.side_bias or self.perception:
            rng = rng or random.Random()
            if self.lapse and rng.random() < self.lapse:
                return rng.choice(ANSWERS)
            if self.side_bias and rng.random() < self.side_bias:
                return "a"
            if self.perception:
                score_a += rng.gauss(0.0, self.perception)
                score_b += rng.gauss(0.0, self.perception)
        if abs(score_a - score_b) <= max(self.tie_margin, 1e-12):
            return "tie"
        return "a" if score_a > score_b else "b"


def annotator_draw(rng: random.Random, *, noise: float = 0.1) -> SimulatedAnnotator:
    """One member of the simulated crowd, with their own bias and noise (for ``simulate_annotators``).

    Each person gets a ``keep_weight`` from [0.2, 0.45] (some care more than others that the rest of the
    reference is kept). Their noise and bias scale with ``noise`` (0..1), the crowd's mean lapse rate: a
    ``lapse`` rate from ``[noise / 2, 3 * noise / 2]`` (capped at 1), a ``perception`` noise from
    ``noise * [0.2, 0.8]``, a ``tie_margin`` from ``noise * [0, 0.3]`` and a ``side_bias`` towards the set shown
    first from ``noise * [0, 0.8]``; with ``noise=0`` they differ only in ``keep_weight``. With the default
    0.1 two people agree on roughly 80-90% of the demo's comparisons, so the human ceiling stays below 1.
    Raises ValueError for a ``noise`` outside 0..1.
    """
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be between 0 and 1, got {noise!r}")
    return SimulatedAnnotator(
        keep_weight=rng.uniform(0.2, 0.45),
        perception=noise * rng.uniform(0.2, 0.8),
        tie_margin=noise * rng.uniform(0.0, 0.3),
        side_bias=min(1.0, noise * rng.uniform(0.0, 0.8)),
        lapse=min(1.0, rng.uniform(noise / 2, 3 * noise / 2)),
    )


def oracle_prefers(
    set_a_attrs: Sequence[Mapping[str, str]],
    set_b_attrs: Sequence[Mapping[str, str]],
    reference_attributes: Mapping[str, str],
    requested: Mapping[str, str],
    *,
    noise: float = 0.0,
    rng: random.Random | None = None,
) -> str:
    """The reference annotator's answer: "a", "b" or "tie".

    The answer names the set with the higher :func:`set_relevance` (default weights; "tie" when equal).
    With probability ``noise`` (0..1) the answer is instead drawn uniformly from "a", "b" and "tie". Pass
    ``rng`` for reproducible noise. Raises ValueError for a noise outside 0..1 or an empty set.
    """
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be between 0 and 1, got {noise!r}")
    return SimulatedAnnotator(lapse=noise).prefers(set_a_attrs, set_b_attrs, reference_attributes, requested, rng=rng)
