"""Parents own the rules of the world: they generate problems, judge actions and move the state."""

from wmil.parents.base import Parent
from wmil.parents.deterministic import DeterministicParent

PARENTS: dict[str, type[Parent]] = {"deterministic": DeterministicParent}


def make_parent(name: str, task) -> Parent:
    if name not in PARENTS:
        raise ValueError(f"unknown parent {name!r}; allowed: {sorted(PARENTS)}")
    return PARENTS[name](task)


__all__ = ["Parent", "DeterministicParent", "PARENTS", "make_parent"]
