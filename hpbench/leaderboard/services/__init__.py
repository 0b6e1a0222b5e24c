"""Writes for the leaderboard: benchmarks (import, freeze), model scores, submissions.

Web-safe: nothing here imports torch. Scoring itself runs in a worker (``worker/scoring.py``), which
hands its per-pair set scores to :func:`~hpbench.leaderboard.services.scores.model_score_store`.

One module per concern; import each name from the module that defines it (this package re-exports nothing):

* ``benchmarks``: preference benchmarks: store, import from HP-FashionIQ files, freeze a campaign's votes;
* ``figures``: a model's figures on a benchmark (preference ratio, agreement, bootstrap intervals), overall,
  per category and weighted;
* ``scores``: model scores: request (queue), claim, progress, store, fail;
* ``submissions``: researchers' submissions: create (quota, upload checks), enqueue, refresh, cancel, publish,
  re-run.
"""
