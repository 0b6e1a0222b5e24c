"""Pure metrics for hpbench: retrieval recall, preference scores, annotator reliability, arena ratings.

Plain numpy/scipy only. The web process imports this package, so nothing here may import Django,
torch or transformers. Every public function takes arrays or plain Python values and returns
JSON-friendly values (floats, ints, lists, dicts, ``None`` for undefined) or numpy arrays.

Modules:
- :mod:`hpbench.metrics.retrieval`: chunked top-k and exact target ranks; FashionIQ and CIRR recall as the
  official evaluation code computes it; CIRR test1 submission files.
- :mod:`hpbench.metrics.preference`: set scores, preference ratio (QuRe Eq. 9), agreement, bootstrap
  intervals.
- :mod:`hpbench.metrics.heldout`: agreement on the pairs a model did not make, the leave-one-out human ceiling
  and the model against the same majorities, the preference ratio's chance level (from a model's choices).
- :mod:`hpbench.metrics.reliability`: pairwise annotator agreement and Krippendorff's alpha (nominal).
- :mod:`hpbench.metrics.arena`: Bradley-Terry ratings with Chatbot Arena conventions and bootstrap intervals.
- :mod:`hpbench.metrics.ppi`: prediction-powered agreement (PPI++) from labelled pairs and a preference model.
"""
