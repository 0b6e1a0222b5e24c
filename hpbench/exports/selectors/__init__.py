"""Reads for exports: validated filters, and the rows of the preference dataset, streamed in chunks.

Rows come from ``values_list(...).iterator(chunk_size=...)`` (a server-side cursor on PostgreSQL), ordered by
primary key. Names (campaigns, models, images) are resolved through small per-export dictionaries filled
one batch at a time, so a chunk costs a constant number of queries whatever its size (no N+1).

Three levels:

* ``votes``: one row per vote (:data:`~hpbench.exports.selectors.columns.VOTE_COLUMNS`);
* ``comparisons``: one row per comparison with at least one counted vote, with aggregates
  (:data:`~hpbench.exports.selectors.columns.COMPARISON_COLUMNS`);
* ``pairs``: one row per pair of a frozen benchmark version (:data:`~hpbench.exports.selectors.columns.PAIR_COLUMNS`).

Annotators appear only as their public pseudonym (``Annotator.pseudonym``); crowd ids, account names and
e-mail addresses are never read.

One module per concern; import each name from the module that defines it (this package re-exports nothing):

* ``params``: :class:`ExportParams`, :class:`ExportError`, :func:`params_parse` and friends (the filters);
* ``columns``: the column lists of each level (the writers build their schemas from them);
* ``lookups``: shared by the row readers: chunk size, per-export name lookups, chunking, day bounds;
* ``votes``, ``comparisons``, ``pairs``: the rows of each level;
* ``rows``: the rows of an export's level, their count and a preview;
* ``images``: the image files a Hugging Face folder embeds;
* ``card``: the dataset card's figures;
* ``jobs``: export jobs, with the access checks.
"""
