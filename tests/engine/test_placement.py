"""Placement walks modules AND plain attributes; the `meta` device stands in for an accelerator."""

from __future__ import annotations

import collections
import threading

import pytest
import torch
from torch import nn

from engine.errors import PlacementError
from engine.placement import iter_tensors, place, stray_tensors, verify_placement

Pair = collections.namedtuple("Pair", "a b")


class Helper:
    """A plain object (not a module) holding tensors, like f5_tts's helper objects."""

    def __init__(self, shared: torch.Tensor):
        self.table = torch.arange(4.0)
        self.same = shared  # alias of a tensor also held elsewhere
        self.nested = {"deep": [torch.ones(2)]}


class Fixture(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3)
        self.register_buffer("buf", torch.zeros(3))
        self.register_buffer("freqs", torch.ones(3), persistent=False)
        self.plain = torch.full((2,), 7.0)
        self.cache = [torch.zeros(1), torch.zeros(1), torch.ones(2)]
        self.by_name = {"k": torch.ones(1), "n": 3}
        self.pair = (torch.ones(1), "label")
        self.named = Pair(torch.ones(1), torch.zeros(1))
        self.tags = {1, 2}
        self.helper = Helper(self.plain)
        self.alias = self.plain
        self.ids = torch.tensor([1, 2, 3])  # integer: moved but never cast
        self._cache_local = threading.local()


def test_place_moves_everything_and_keeps_aliases():
    obj = Fixture()
    place(obj, "meta")
    assert stray_tensors(obj, "meta") == []
    assert obj.alias is obj.plain is obj.helper.same
    assert obj.plain.device.type == "meta"
    assert obj.helper.nested["deep"][0].device.type == "meta"
    assert isinstance(obj.named, Pair) and obj.named.a.device.type == "meta"
    assert obj.pair[1] == "label" and obj.by_name["n"] == 3 and obj.tags == {1, 2}


def test_plain_to_leaves_exactly_the_non_module_tensors_behind():
    obj = Fixture()
    obj.to("meta")
    assert sorted(stray_tensors(obj, "meta")) == sorted([
        "plain", "cache[0]", "cache[1]", "cache[2]", "by_name['k']", "pair[0]",
        "named[0]", "named[1]", "helper.table", "helper.nested['deep'][0]", "ids",
    ])


def test_aliases_are_reported_once_under_the_first_path():
    obj = Fixture()
    paths = [p for p, _ in iter_tensors(obj)]
    assert "plain" in paths and "alias" not in paths and "helper.same" not in paths


def test_dtype_casts_floating_tensors_only():
    obj = Fixture()
    weight = obj.linear.weight
    place(obj, "cpu", torch.float16)
    assert obj.linear.weight is weight, "parameters keep their identity"

    assert obj.linear.weight.dtype == torch.float16
    assert obj.freqs.dtype == torch.float16 and obj.plain.dtype == torch.float16
    assert obj.ids.dtype == torch.int64


def test_thread_local_caches_are_cleared_even_when_another_thread_filled_them():
    obj = Fixture()

    def fill():
        obj._cache_local.text = torch.ones(5)

    t = threading.Thread(target=fill)
    t.start()
    t.join()
    obj._cache_local.text = torch.ones(5)  # this thread's view
    place(obj, "meta")
    assert not hasattr(obj._cache_local, "text")
    assert stray_tensors(obj, "meta") == []


def test_stray_paths_see_this_threads_cache():
    obj = Fixture()
    place(obj, "meta")
    obj._cache_local.text_cond = torch.ones(1)
    assert stray_tensors(obj, "meta") == ["_cache_local.text_cond"]


def test_verify_names_the_paths():
    obj = Fixture()
    obj.to("meta")
    with pytest.raises(PlacementError) as err:
        verify_placement(obj, "meta")
    assert "helper.table" in err.value.paths
    assert "not on meta" in str(err.value)


def test_cycles_and_shared_containers_are_walked_once():
    obj = Fixture()
    obj.helper.back = obj  # cycle through a helper
    obj.twice = obj.cache  # the same list under two names
    place(obj, "meta")
    assert stray_tensors(obj, "meta") == []
    assert obj.twice is obj.cache


def test_bare_tensor_and_tuple_roots_return_replacements():
    t = torch.ones(2)
    assert place(t, "meta").device.type == "meta"
    moved = place((t, t), "meta")
    assert moved[0] is moved[1] and moved[0].device.type == "meta"
