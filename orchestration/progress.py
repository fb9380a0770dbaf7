"""Progress bars for long work (training, annotation runs, sensitivity, QAT, continual updates):
one tqdm bar per phase on stderr, quiet when stderr is not a terminal (DVC logs, CI, pipes)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


class Bars:
    """`bars(phase, done, total, **postfix)`: move `phase`'s bar to `done` of `total`
    (created on first use, closed when done reaches total). Use as a context manager."""

    def __init__(self, unit: str = "step") -> None:
        self.unit = unit
        self.open: dict[str, tqdm] = {}

    def __call__(self, phase: str, done: int, total: int, **postfix: object) -> None:
        bar = self.open.get(phase)
        if bar is None:
            bar = self.open[phase] = tqdm(desc=phase, total=total, unit=self.unit, disable=None)
        bar.total = total
        if postfix:
            bar.set_postfix(
                {k: f"{v:.3f}" if isinstance(v, float) else v for k, v in postfix.items()},
                refresh=False,
            )
        bar.update(done - bar.n)
        if done >= total:
            self.open.pop(phase).close()

    def __enter__(self) -> Bars:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for bar in self.open.values():
            bar.close()
        self.open.clear()


def tracked(items: Iterable[T], phase: str, total: int, unit: str = "run") -> Iterator[T]:
    """`items` with a bar over them."""
    yield from tqdm(items, desc=phase, total=total, unit=unit, disable=None)
