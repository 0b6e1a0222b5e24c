"""The modification text of a query: the one rule the annotation page, retrieval, scoring and training share.

Plain Python (no Django, no torch), so the web process and the worker both import it. The official
formatting of each protocol lives in :mod:`models_zoo.text`; this module picks it by protocol.
"""

from __future__ import annotations

from collections.abc import Sequence

from models_zoo.text import cirr_query_text, fashioniq_query_text

#: ``Dataset.protocol`` values, and ``"hpfiq"`` for the released HP-FashionIQ file's sentences.
PROTOCOLS = ("fashioniq", "cirr", "hpfiq")


def query_text(*, protocol: str, captions: Sequence[str]) -> str:
    """The text a model encodes for a query, and the text annotators are shown for it.

    - ``"fashioniq"`` (FashionIQ and the demo): two captions joined as CLIP4Cir's evaluation does,
      ``"Cap1 and cap2"`` (:func:`models_zoo.text.fashioniq_query_text`); a query file with another number of
      captions gets them joined with ``" and "``, each stripped of ``.?,`` and spaces, empty ones left out.
    - ``"cirr"``: the one relative caption as is, surrounding whitespace removed.
    - ``"hpfiq"``: the one released sentence, surrounding whitespace removed.

    Raises ``ValueError`` for an unknown protocol, captions that are not a list of strings, or a CIRR or
    HP-FashionIQ query without exactly one caption.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown query protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    if isinstance(captions, str) or not all(isinstance(c, str) for c in captions):
        raise ValueError(f"captions must be a list of strings, got {captions!r}")
    if protocol == "fashioniq":
        if len(captions) == 2:
            return fashioniq_query_text(captions)
        return " and ".join(c.strip(".?, ") for c in captions if c.strip(".?, "))
    if len(captions) != 1:
        raise ValueError(f"{protocol} queries have exactly one caption, got {list(captions)!r}")
    return cirr_query_text(captions[0])
