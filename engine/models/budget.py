"""The device budget: at most ``max_loaded`` members hold accelerator memory at once.

A *member* is anything that holds device memory and can give it back: each model's engine
(through :class:`EngineResident`) and, later, others such as a Whisper transcriber -- anything
with the small :class:`DeviceResident` protocol, added with :meth:`DeviceBudget.add`.

A caller *acquires* a member before using it and releases the :class:`Grant` when done; while a
grant is held the member is never evicted. A member counts against the budget while it is
resident (its own word: loading, loaded or unloading), granted, or being evicted.

* A member that is resident or granted is *usable*: a request for it proceeds at once (the
  requests of one model share its engine and its batches) -- unless a switch is waiting.
* Otherwise the request needs a *switch* and waits in a FIFO line. Once anyone waits there, new
  requests, even for a usable member, line up behind it: a busy model cannot starve another one.
* The head of the line proceeds when its member is usable or there is room; else it evicts the
  least recently used counted member that no grant holds (``evict()`` runs with no lock held and
  waits for that member's running work), and looks again. With nothing to evict it waits for a
  release. Only the head evicts, so two switches never free the same room twice.
* A thread that already holds an *owned* grant of a member gets another one at once (re-entrant:
  a dialogue holding a model while it synthesises each line). A thread waiting for a member while
  holding owned grants of ``max_loaded`` others would wait for itself: that raises at once. A grant
  taken with ``owned=False`` (a stream's, whose steps may run on any thread, as Gradio's do)
  belongs to no thread: it is never re-entered and never counts as the thread's.
* A member whose ``evict()`` raised stops counting until it is next acquired, so a failing unload
  never blocks the other models (the engine places on the CPU when the accelerator is full).

Lock order: ``DeviceBudget._cond`` is the outermost lock of the pool. Under it only a member's
``resident`` is read (for an engine: ``Engine.state``, i.e. ``Lifecycle.cond``, briefly), never
``evict()``; no member calls the budget from inside its own locks. See :mod:`engine.engine`.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
from collections import Counter
from typing import Callable, Protocol

from engine.claim import Claim
from engine.clock import Clock
from engine.engine import Engine
from engine.errors import BusyError
from engine.states import EngineState

log = logging.getLogger(__name__)

#: Called as ``listener(event, name)`` after each eviction (``"evicted"``), with no lock held.
Listener = Callable[[str, str], None]
_HOLDING = (EngineState.LOADING, EngineState.READY, EngineState.UNLOADING)


class DeviceResident(Protocol):
    """Something that holds accelerator memory and can give it back."""

    name: str

    @property
    def resident(self) -> bool:
        """Whether it holds device memory now (quick; never blocks long or calls the budget)."""

    def evict(self) -> None:
        """Free its device memory; waits for its running work; harmless when not resident."""


class EngineResident:
    """A model's engine as a :class:`DeviceResident`: resident while loading, ready or unloading;
    evicted with ``Engine.unload()`` (which waits for its running passes and keeps the host copy
    when configured, so the next load is a fast copy)."""

    def __init__(self, name: str, engine: Engine):
        self.name = name
        self.engine = engine

    @property
    def resident(self) -> bool:
        """True in LOADING, READY and UNLOADING."""
        return self.engine.state in _HOLDING

    def evict(self) -> None:
        """``Engine.unload()``: safe against the engine's own idle reaper (its state machine orders them)."""
        self.engine.unload()


@dataclasses.dataclass
class _Member:
    resident: DeviceResident
    holders: Counter = dataclasses.field(default_factory=Counter)  # owning thread id (None: no owner) -> grants
    evicting: bool = False
    stuck: bool = False  # its last evict() raised: not counted until acquired again
    last_used: int = 0  # use order, for least-recently-used eviction
    last_used_wall: float | None = None

    @property
    def grants(self) -> int:
        return sum(self.holders.values())

    def counted(self) -> bool:
        return not self.stuck and (self.grants > 0 or self.evicting or self.resident.resident)

    def usable(self) -> bool:
        return not self.evicting and (self.grants > 0 or self.resident.resident)


class Grant(Claim):
    """A held claim on a member: it is not evicted until :meth:`release` (idempotent, from any
    thread) or the end of its ``with`` block."""

    def __init__(self, budget: "DeviceBudget", name: str, owner: int | None):
        super().__init__()
        self.name = name
        self._budget, self._owner = budget, owner

    def _give_back(self) -> None:
        self._budget._release(self.name, self._owner)


@dataclasses.dataclass(frozen=True)
class BudgetSnapshot:
    """The budget at one instant: who counts against it, who waits, and each member's use."""

    max_loaded: int
    resident: tuple[str, ...]  # members counted against the budget, in the order they were added
    waiting: int  # requests waiting for a switch
    evictions: int  # evictions made to switch so far
    grants: dict[str, int]
    last_used: dict[str, float | None]  # wall time of each member's last acquire or release


class DeviceBudget:
    """At most ``max_loaded`` members resident; see the module docstring for the rules."""

    def __init__(self, max_loaded: int, clock: Clock, max_waiting: int = 32, listener: Listener | None = None):
        if max_loaded < 1:
            raise ValueError("max_loaded must be at least 1")
        self.max_loaded = max_loaded
        self.max_waiting = max_waiting
        self._clock = clock
        self._listener = listener
        self._cond = threading.Condition(threading.Lock())
        # --- guarded by _cond ---
        self._members: dict[str, _Member] = {}
        self._line: list[object] = []  # tickets of the requests waiting for a switch, FIFO
        self._uses = itertools.count(1)
        self._evictions = 0

    def add(self, resident: DeviceResident) -> None:
        """Put ``resident`` under the budget (its name must be new)."""
        with self._cond:
            if resident.name in self._members:
                raise ValueError(f"{resident.name!r} is already under the budget")
            self._members[resident.name] = _Member(resident)

    def acquire(self, name: str, on_wait: Callable[[], None] | None = None, owned: bool = True) -> Grant:
        """Wait until ``name`` may hold device memory (evicting others as needed) and hold it.
        ``on_wait`` is called once, with no lock held, if the request has to wait in line;
        ``owned=False`` makes a grant of no thread (see the module docstring). Raises
        :class:`BusyError` when ``max_waiting`` requests already wait."""
        me = threading.get_ident()
        owner = me if owned else None
        with self._cond:
            member = self._members[name]
            if member.holders[me] > 0 or (not self._line and (member.usable() or self._room())):
                return self._take(member, owner)
            held = sum(1 for other in self._members.values() if other is not member and other.holders[me] > 0)
            if held >= self.max_loaded:
                raise RuntimeError(f"this thread holds {held} other member(s) of a budget of {self.max_loaded}: "
                                   f"waiting for {name!r} would wait for itself; release them first")
            if len(self._line) >= self.max_waiting:
                raise BusyError(f"The server is busy ({self.max_waiting} requests waiting to switch models). "
                                "Please try again in a minute.")
            ticket = object()
            self._line.append(ticket)
        try:
            if on_wait is not None:
                on_wait()
            with self._cond:
                while True:
                    if self._line[0] is ticket:
                        if member.usable() or self._room():
                            return self._take(member, owner)
                        victim = self._victim(member)
                        if victim is not None:
                            self._evict(victim)
                            continue
                    self._cond.wait()
        finally:
            with self._cond:
                self._line.remove(ticket)
                self._cond.notify_all()

    def evict_all(self) -> None:
        """Evict every member, each once no grant holds it (new requests for it wait meanwhile)."""
        for name in list(self._members):
            with self._cond:
                member = self._members[name]
                while member.evicting:
                    self._cond.wait()
                member.evicting = True
                try:
                    while member.grants > 0:
                        self._cond.wait()
                finally:
                    member.evicting = False
                if member.counted():
                    self._evict(member)

    def snapshot(self) -> BudgetSnapshot:
        """The budget now (reads each member's ``resident``)."""
        with self._cond:
            return BudgetSnapshot(
                max_loaded=self.max_loaded, waiting=len(self._line), evictions=self._evictions,
                resident=tuple(name for name, m in self._members.items() if m.counted()),
                grants={name: m.grants for name, m in self._members.items()},
                last_used={name: m.last_used_wall for name, m in self._members.items()})

    # ------------------------------------------------------------------ under _cond

    def _room(self) -> bool:
        return sum(1 for m in self._members.values() if m.counted()) < self.max_loaded

    def _victim(self, keep: _Member) -> _Member | None:
        candidates = [m for m in self._members.values()
                      if m is not keep and m.grants == 0 and not m.evicting and m.counted()]
        return min(candidates, key=lambda m: m.last_used, default=None)

    def _take(self, member: _Member, owner: int | None) -> Grant:
        member.holders[owner] += 1
        member.stuck = False
        self._touch(member)
        return Grant(self, member.resident.name, owner)

    def _touch(self, member: _Member) -> None:
        member.last_used = next(self._uses)
        member.last_used_wall = self._clock.wall()

    def _evict(self, member: _Member) -> None:
        """Evict ``member`` with ``_cond`` released (held on entry and on return)."""
        member.evicting = True
        name = member.resident.name
        failed = False
        self._cond.release()
        try:
            log.info("evicting %r to make room on the device", name)
            member.resident.evict()
        except Exception:  # an unload failed: do not let it block the other models
            log.exception("evicting %r failed; it no longer counts against the budget", name)
            failed = True
        finally:
            if self._listener is not None:
                self._listener("evicted", name)
            self._cond.acquire()
            member.evicting = False
            member.stuck = failed
            self._evictions += 1
            self._cond.notify_all()

    def _release(self, name: str, owner: int | None) -> None:
        with self._cond:
            member = self._members[name]
            member.holders[owner] -= 1
            if member.holders[owner] <= 0:
                del member.holders[owner]
            self._touch(member)
            self._cond.notify_all()
