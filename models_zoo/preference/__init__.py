"""A human-preference model for composed retrieval: the probability that people prefer set 1 of a judged pair.

Pure numpy and torch, no Django (the worker's ``worker/preference.py`` feeds it a frozen benchmark). Like a
reward model for text-to-image (ImageReward, PickScore) it is learned from people's votes, here the platform's
own frozen benchmark pairs; unlike a CIR model it ranks nothing, it only predicts a pairwise verdict.

- :mod:`.features`: a pair's features from the registered CIR models' set scores on it: each model's set-score gap,
  scaled per model, where the worker can read it from the model's stored top-K (:func:`~.features.gap_features`);
  otherwise which set each model scores higher (+1 / -1 / 0) and which models made the two sets (+1 / -1 per maker,
  a Bradley-Terry term, :func:`~.features.pair_features`); either with which set shows the reference image.
- :mod:`.model`: an L2-regularised logistic regression without intercept, fitted on every pair and its mirror
  image (sets swapped, label flipped), so ``p(swap) = 1 - p`` exactly; K-fold cross-fitting over queries
  (:func:`~.model.cross_fit`) so no pair is ever predicted by a fit that saw it.
- :mod:`.evaluate`: held-out agreement and log-loss, with paired bootstrap intervals, of the preference model
  and of every CIR model's own choices (calibrated on the training folds).

Importing this package does not import torch.
"""

VERSION = "logreg-v2"
"""v2: set-score gaps and the reference shown where top-K runs exist, nested L2 (v1: choices and makers only)."""
