"""Balanced batches over several source datasets: a dataset uniformly at random, then an image within it.

Within a dataset, images are drawn without replacement from a seeded shuffle that is redrawn when used up, so
small sources repeat more often than large ones (that is the point: each source counts the same). Batches are a
pure function of ``(seed, epoch, batch index)``, so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


class BalancedBatchSampler:
    """Yields batches of ``(dataset index, item index)`` pairs.

    Args:
        sizes: number of items of each dataset (all > 0).
        batch_size: items per batch.
        batches_per_epoch: default: total items // batch_size (at least 1).
        seed: base seed.
    """

    def __init__(self, sizes: Sequence[int], batch_size: int, batches_per_epoch: int | None = None, seed: int = 0):
        if not sizes or any(int(n) <= 0 for n in sizes):
            raise ValueError(f"every dataset needs at least one item, got sizes {list(sizes)}")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.sizes = [int(n) for n in sizes]
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch or max(1, sum(self.sizes) // batch_size)
        self.seed = seed

    def __len__(self) -> int:
        return self.batches_per_epoch

    def epoch(self, epoch: int) -> list[list[tuple[int, int]]]:
        """All batches of one epoch."""
        rng = np.random.default_rng([self.seed, epoch])
        orders = [rng.permutation(n) for n in self.sizes]
        cursors = [0] * len(self.sizes)
        batches = []
        for _ in range(self.batches_per_epoch):
            batch = []
            for d in rng.integers(0, len(self.sizes), size=self.batch_size):
                if cursors[d] == self.sizes[d]:
                    orders[d], cursors[d] = rng.permutation(self.sizes[d]), 0
                batch.append((int(d), int(orders[d][cursors[d]])))
                cursors[d] += 1
            batches.append(batch)
        return batches

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return iter(self.epoch(0))
