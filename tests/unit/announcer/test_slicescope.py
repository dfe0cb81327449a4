"""Which EndpointSlices a node watches: the shards' word; narrowing only when nothing is lost."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from announcer.core.slicescope import assigned_services, unlabelled, wanted_selector
from exalb.assignments import SCHEMA_KEY
from exalb.assignments.slicescope import SCOPE_ANNOTATION, SLICE_SELECTOR


def shard(vouch: str | None, *services: str) -> dict[str, Any]:
    md: dict[str, Any] = {"name": "exalb-assignments-0"}
    if vouch is not None:
        md["annotations"] = {SCOPE_ANNOTATION: vouch}
    data = {SCHEMA_KEY: "2", **{s.replace("/", "."): "{}" for s in services}}
    return {"metadata": md, "data": data}


def test_every_shard_must_vouch_for_the_selector_we_know() -> None:
    assert wanted_selector([]) is None  # no allocator has written yet
    assert wanted_selector([shard(SLICE_SELECTOR), shard(SLICE_SELECTOR)]) == SLICE_SELECTOR
    # An older allocator rewrote one shard: its Services may be unlabelled.
    assert wanted_selector([shard(SLICE_SELECTOR), shard(None)]) is None
    assert wanted_selector([shard(None)]) is None
    # A selector a newer allocator vouches for, that this reader does not know.
    assert wanted_selector([shard("exalb.io/assigned-v2=yes")]) is None


def test_assigned_services_are_read_from_the_entry_keys() -> None:
    shards = [shard(SLICE_SELECTOR, "ns/web", "ns/api"), shard(None, "other/db")]
    assert assigned_services(shards) == {"ns/web", "ns/api", "other/db"}


def test_narrowing_waits_for_every_slice_of_an_assigned_service() -> None:
    every = {"ns/web-a": "ns/web", "ns/web-b": "ns/web", "ns/cip-a": "ns/cip", "ns/x": None}
    # The controller has labelled one of web's two slices so far.
    assert unlabelled({"ns/web"}, every, {"ns/web-a"}) == ["ns/web-b"]
    # ... and no more: slices of Services exalb does not serve (or of no Service), here
    # ns/cip-a and ns/x, may stay unlabelled.
    assert unlabelled({"ns/web"}, every, {"ns/web-a", "ns/web-b"}) == []


slices = st.dictionaries(
    st.text("abcdef", min_size=1, max_size=3),
    st.one_of(st.none(), st.sampled_from(["ns/a", "ns/b", "ns/c"])),
    max_size=12,
)


@given(slices, st.sets(st.sampled_from(["ns/a", "ns/b", "ns/c"])), st.data())
def test_narrowing_never_loses_a_slice_of_an_assigned_service(
    every: dict[str, str | None], assigned: set[str], data: st.DataObject
) -> None:
    labelled = data.draw(st.sets(st.sampled_from(sorted(every)))) if every else set()
    missing = unlabelled(assigned, every, labelled)
    needed = {k for k, svc in every.items() if svc in assigned}
    # Empty exactly when the labelled view holds every slice an assigned Service has.
    assert (not missing) == needed.issubset(labelled)
    assert set(missing) == needed - labelled
