"""Values derived once per object: the same object gets the value derived for it, another object (even an equal one,
even one at a freed object's address) gets its own."""

from __future__ import annotations

from switchboard_common.per_object import PerObject


class Key:
    def __init__(self, name: str) -> None:
        self.name = name


def test_a_value_is_derived_once_per_object_and_never_handed_to_another() -> None:
    derived: list[str] = []

    def derive(key: Key) -> str:
        derived.append(key.name)
        return key.name.upper()

    facts: PerObject[Key, str] = PerObject(derive)
    first = Key("a")
    assert [facts.of(first) for _ in range(3)] == ["A", "A", "A"]
    assert facts.of(Key("a")) == "A" and derived == ["a", "a"], "an equal but new object is derived again"
    assert facts.of(Key("b")) == "B"


def test_an_object_stays_alive_while_its_entry_is_there_so_its_id_is_not_reused() -> None:
    facts: PerObject[Key, str] = PerObject(lambda key: key.name)
    ids = set()
    for n in range(100):
        key = Key(str(n))
        assert facts.of(key) == str(n)
        ids.add(id(key))
        del key
    assert len(ids) == 100, "each object kept its id: none was freed while remembered"


def test_a_full_table_is_emptied_and_goes_on_deriving() -> None:
    derived: list[str] = []
    facts: PerObject[Key, str] = PerObject(lambda key: derived.append(key.name) or key.name, most=3)
    keys = [Key(str(n)) for n in range(5)]
    assert [facts.of(key) for key in keys] == ["0", "1", "2", "3", "4"]
    assert facts.of(keys[4]) == "4" and facts.of(keys[0]) == "0"
    assert derived == ["0", "1", "2", "3", "4", "0"], "the first ones were forgotten when the table filled"
