"""The targets of ``rdptrust scan``: parsed and counted before the inventory is touched."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from rdptrust.model.target import check_target_total, count_targets, read_target_file


def _specs(targets: tuple[str, ...], input_file: str | None) -> Iterator[str]:
    yield from targets
    if input_file is not None:
        yield from read_target_file(input_file)


def checked_specs(
    targets: tuple[str, ...], input_file: str | None, max_targets: int
) -> Iterable[str]:
    """The specs, each parsed and their total counted before the inventory is touched.

    A file is read twice (once to count, once to expand); standard input, which cannot
    be, is kept in memory (at most 64 MiB).
    """
    if input_file == "-":
        specs: Iterable[str] = list(_specs(targets, input_file))
    else:
        specs = _Rereadable(targets, input_file)
    check_target_total(count_targets(specs), max_targets)
    return specs


class _Rereadable:
    def __init__(self, targets: tuple[str, ...], input_file: str | None) -> None:
        self._targets, self._input_file = targets, input_file

    def __iter__(self) -> Iterator[str]:
        return _specs(self._targets, self._input_file)
