"""QuRe's negative schedule and per-query negative sampler.

Schedule (QuRe's ``train_qure.py`` with ``negative_definition_epoch_num = 6`` and ``rerank_warmup``): training
is cut into blocks of ``period = epochs // 6`` epochs. The first block is the warm-up: each query's negative is
drawn uniformly from its whole corpus minus its target. At the first epoch of every later block
(``epoch % period == 0``) the hard-negative sets are redefined from the current model. With ``epochs`` a
multiple of 6 that gives 6 blocks: the warm-up and 5 hard-negative definitions; when ``epochs`` is not a
multiple, the remainder forms a 7th block (as in QuRe's code). With fewer than 6 epochs (QuRe's code divides
by zero there) the period is 1: epoch 0 is the warm-up and the sets are redefined at every later epoch, so a
1-epoch run is warm-up only.

Sampling: each epoch every query gets one negative from its set, uniformly, without repeats until the set
is used up (a per-query shuffled cycle, reshuffled when exhausted, which is what QuRe's history-based
rejection sampling amounts to). The warm-up draws independently each epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

WARMUP = "warmup"
REDEFINE = "redefine"
KEEP = "keep"

DEFINITIONS = 6


def definition_period(epochs: int, definitions: int = DEFINITIONS) -> int:
    """Epochs per block: ``max(1, epochs // definitions)``. ValueError for ``epochs < 1``."""
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    return max(1, epochs // definitions)


def schedule_action(epoch: int, epochs: int, definitions: int = DEFINITIONS) -> str:
    """What happens at the start of ``epoch`` (0-based): ``"warmup"``, ``"redefine"`` or ``"keep"``."""
    if not 0 <= epoch < epochs:
        raise ValueError(f"epoch {epoch} outside 0..{epochs - 1}")
    period = definition_period(epochs, definitions)
    if epoch < period:
        return WARMUP
    return REDEFINE if epoch % period == 0 else KEEP


class NegativeSampler:
    """Draws one negative image per query per epoch.

    ``corpora[i]`` is query ``i``'s corpus (int64 image ids; the images it is ranked against) and
    ``targets[i]`` its target image id, which must be in the corpus. ``generator`` makes draws reproducible.
    Sets given to :meth:`set_negatives` hold image ids.
    """

    def __init__(
        self, *, corpora: Sequence[torch.Tensor], targets: Sequence[int], generator: torch.Generator | None = None
    ) -> None:
        if len(corpora) != len(targets):
            raise ValueError(f"{len(corpora)} corpora but {len(targets)} targets")
        self.corpora = [torch.as_tensor(c, dtype=torch.long) for c in corpora]
        self.targets = torch.as_tensor(list(targets), dtype=torch.long)
        for i, (corpus, target) in enumerate(zip(self.corpora, self.targets.tolist(), strict=True)):
            if not bool((corpus == target).any()):
                raise ValueError(f"query {i}: its target {target} is not in its corpus")
            if len(corpus) < 2:
                raise ValueError(f"query {i}: its corpus holds only the target; it needs a negative")
        self.generator = generator or torch.Generator().manual_seed(0)
        self.sets: list[torch.Tensor] | None = None
        self._cycles: list[torch.Tensor] = []
        self._cursor: list[int] = []

    def __len__(self) -> int:
        return len(self.targets)

    def set_negatives(self, sets: Sequence[torch.Tensor]) -> None:
        """Replace every query's hard-negative set (image ids, non-empty, never the query's target)."""
        if len(sets) != len(self):
            raise ValueError(f"{len(sets)} negative sets for {len(self)} queries")
        cleaned = []
        for i, s in enumerate(sets):
            s = torch.as_tensor(s, dtype=torch.long).reshape(-1)
            if s.numel() == 0:
                raise ValueError(f"query {i}: empty hard-negative set")
            if bool((s == self.targets[i]).any()):
                raise ValueError(f"query {i}: its hard-negative set contains its target")
            cleaned.append(s)
        self.sets = cleaned
        self._cycles = [self._shuffle(s) for s in cleaned]
        self._cursor = [0] * len(cleaned)

    def _shuffle(self, s: torch.Tensor) -> torch.Tensor:
        return s[torch.randperm(len(s), generator=self.generator)]

    def warmup_draw(self) -> torch.Tensor:
        """One negative per query, uniform over its corpus minus its target. ``(Q,)`` int64."""
        out = torch.empty(len(self), dtype=torch.long)
        for i, (corpus, target) in enumerate(zip(self.corpora, self.targets.tolist(), strict=True)):
            pick = int(torch.randint(len(corpus) - 1, (1,), generator=self.generator))
            # Index into the corpus with the target's slot skipped: uniform over the other images.
            target_slot = int((corpus == target).nonzero()[0])
            out[i] = corpus[pick + (pick >= target_slot)]
        return out

    def hard_draw(self) -> torch.Tensor:
        """One negative per query from its current hard set, no repeats until the set is used up."""
        if self.sets is None:
            raise RuntimeError("no hard-negative sets yet: call set_negatives() first")
        out = torch.empty(len(self), dtype=torch.long)
        for i in range(len(self)):
            if self._cursor[i] >= len(self._cycles[i]):
                self._cycles[i] = self._shuffle(self.sets[i])
                self._cursor[i] = 0
            out[i] = self._cycles[i][self._cursor[i]]
            self._cursor[i] += 1
        return out

    # ---- state for resuming -------------------------------------------------------------------------

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors that restore the sets, the cycles and the generator (for ``torch.save``)."""
        state: dict[str, torch.Tensor] = {"generator": self.generator.get_state()}
        if self.sets is not None:
            state["set_sizes"] = torch.tensor([len(s) for s in self.sets], dtype=torch.long)
            state["sets"] = torch.cat(self.sets)
            state["cycles"] = torch.cat(self._cycles)
            state["cursor"] = torch.tensor(self._cursor, dtype=torch.long)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.generator.set_state(state["generator"])
        if "sets" not in state:
            self.sets, self._cycles, self._cursor = None, [], []
            return
        sizes = state["set_sizes"].tolist()
        if len(sizes) != len(self):
            raise ValueError(f"saved sampler state is for {len(sizes)} queries, not {len(self)}")
        self.sets = list(torch.split(state["sets"], sizes))
        self._cycles = list(torch.split(state["cycles"], sizes))
        self._cursor = state["cursor"].tolist()
