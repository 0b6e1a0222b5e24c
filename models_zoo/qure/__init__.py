"""QuRe's training objective (ICML 2025) for any family behind :class:`models_zoo.base.CIRModel`.

- :mod:`models_zoo.qure.negatives`: the hard-negative rule (which images a query is trained against).
- :mod:`models_zoo.qure.sampler`: the warm-up / redefinition schedule and the per-query negative sampler.
- :mod:`models_zoo.qure.losses`: the reward-model (Bradley-Terry) loss, InfoNCE, the learned temperature.
- :mod:`models_zoo.qure.data`: training/validation data as plain lists and tensors.
- :mod:`models_zoo.qure.trainer`: the training loop (checkpoints, resume, per-epoch log).

Importing this package imports nothing heavy; import the submodules you need.
"""
