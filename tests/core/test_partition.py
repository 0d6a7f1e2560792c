"""Parts of a first comparison (:mod:`calmesh.core.partition`): linked items never split."""

from __future__ import annotations

from calmesh.core.partition import Joiner


def _parts(names: dict[int, set[str]], size: int) -> list[list[int]]:
    joiner = Joiner()
    for key, item_names in names.items():
        joiner.add(key, item_names)
    return joiner.parts(size)


def test_items_sharing_a_name_share_a_part_and_the_rest_fill_parts_in_order() -> None:
    names = {5: {"id:3"}, 1: {"uid:1"}, 2: {"uid:2"}, 3: {"uid:1", "id:3"}, 4: {"uid:3"}, 6: {"uid:4"}}
    assert _parts(names, 3) == [[1, 3, 5], [2, 4, 6]]
    assert _parts(dict(reversed(names.items())), 3) == [[1, 3, 5], [2, 4, 6]]  # whatever the order read in


def test_a_chain_of_names_joins_its_ends_and_a_group_larger_than_a_part_stays_whole() -> None:
    names = {10: {"n1"}, 15: {"other"}, 20: {"n1", "n2"}, 30: {"n2", "n3"}, 40: {"n3"}}
    assert _parts(names, 2) == [[10, 20, 30, 40], [15]]


def test_items_without_shared_names_are_cut_at_the_size() -> None:
    names = {n: {f"uid:{n}"} for n in range(7)}
    assert [len(p) for p in _parts(names, 3)] == [3, 3, 1]
    assert _parts({}, 3) == []
