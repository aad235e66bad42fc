"""The list-all answer read as it arrives, item by item, without holding the body.

LaunchDarkly lists every integration of the account in one answer, with no paging: an account
of 250,000 integrations answers about 180 MB of JSON. A :class:`ListingReader` is fed the body
chunk by chunk (ijson, over yajl's C parser when it is installed) and keeps each item as it
completes, whole or lean (:func:`lean_integration`), so memory follows what is kept, not the
body. The envelope is checked as the converter would check it: an object, whose ``items`` (when
there) is an array.

Pure: no I/O here; a transport feeds the chunks (:class:`~ldbulk.api.sansio.BodySink`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from itertools import accumulate
from operator import itemgetter
from typing import Any, Final

import ijson
from ijson.utils import sendable_list

from ldbulk.api.converter import structure
from ldbulk.api.resources import Integration, IntegrationCollection
from ldbulk.errors import ResponseFormatError

# The members of a listed item that a lean record keeps, by API name.
_LEAN_KEYS: Final = (
    "_id", "integrationKey", "projectKey", "environmentKey", "on", "tags", "name", "version"
)
# The parse errors of ijson: bad JSON, a body cut short, a number Python will not convert.
_BAD_JSON: Final = (ijson.JSONError, ValueError, UnicodeDecodeError, RecursionError)
# The item parser (ijson) keeps a path string for each level it is in, each the keys down to
# that level, so its memory is up to the depth times the path's length: a body nested 30,000
# deep took 1.6 GB, 200,000 deep tens of GB; 500 levels of 10 KB keys, over a GB. Both are
# bounded before it sees a piece of the body (the guard reads it first, without paths):
# nesting deeper than MAX_DEPTH is no listing (one is 5 levels deep), and neither is a depth
# times the bytes read since the path left the envelope past MAX_PATH_WORK (a listed item is
# about 1.5 KB at depth 5). The path is at most 5 bytes per byte read (".item" for a "["), so
# the paths stay under 5 x MAX_PATH_WORK bytes: 40 MB.
MAX_DEPTH: Final = 512
MAX_PATH_WORK: Final = 1 << 23
# The most integrations a listing may hold: twice the largest account ldbulk is measured
# against (250,000), and far above any real one (at most two per environment). A body that
# goes on past it is no listing: ended with an error before it fills the memory.
MAX_LISTED: Final = 500_000
# Pieces of the body are parsed this large at most, so a large chunk counts as large paths no
# more than its last slice's worth (see MAX_PATH_WORK).
SLICE: Final = 1 << 16
# The level of an item of the listing: in the envelope's object and its ``items`` array.
_ITEM_LEVEL: Final = 2
# How each of ijson's basic events changes the nesting depth.
_DEPTH_STEP: Final = {
    "start_map": 1, "start_array": 1, "end_map": -1, "end_array": -1, "map_key": 0,
    "string": 0, "number": 0, "integer": 0, "double": 0, "boolean": 0, "null": 0,
}
_event_name = itemgetter(0)
# One lean record's links: shared, since nothing reads or changes them.
_NO_LINKS: Final[Mapping[str, Any]] = {}


def lean_integration(data: Any, *, what: str) -> Integration:
    """An integration with only what a run uses of it: id, keys, ``on``, tags, name, version.

    Read straight from the JSON object (structuring links, status and access is most of the
    cost of a whole :class:`Integration`); anything not as the model types it goes to the
    converter, which raises :class:`~ldbulk.errors.ResponseFormatError` naming the field. The
    keys are interned: hundreds of thousands of records share a few project keys.
    """
    if isinstance(data, dict):
        id_, key = data.get("_id"), data.get("integrationKey")
        project, environment = data.get("projectKey"), data.get("environmentKey")
        on, tags = data.get("on", False), data.get("tags", ())
        name, version = data.get("name", ""), data.get("version", 0)
        if (
            type(id_) is str and type(key) is str and type(project) is str
            and type(environment) is str and type(on) is bool and type(name) is str
            and type(version) is int and isinstance(tags, list | tuple)
            and all(type(tag) is str for tag in tags)
        ):
            return Integration(
                id=id_,
                integration_key=sys.intern(key),
                project_key=sys.intern(project),
                environment_key=sys.intern(environment),
                on=on,
                tags=tuple(map(sys.intern, tags)),
                name=name,
                version=version,
                links=_NO_LINKS,
            )
    if not isinstance(data, Mapping):
        return structure(data, Integration, what=what)  # raises, naming what it got
    kept = {name: data[name] for name in _LEAN_KEYS if name in data}
    return structure(kept, Integration, what=what)


def whole_integration(data: Any, *, what: str) -> Integration:
    """An integration as the converter structures it, status and links included."""
    return structure(data, Integration, what=what)


Builder = Callable[..., Integration]


class ListingReader:
    """Reads the list-all body chunk by chunk into integrations (a ``BodySink``).

    ``lean`` keeps each item as :func:`lean_integration` reads it; otherwise whole, status and
    links included. More than ``max_items`` items is no listing (:data:`MAX_LISTED`).
    ``what`` names the request in errors (``GET /api/v2/...``). Errors are
    :class:`~ldbulk.errors.ResponseFormatError`, raised by :meth:`feed` or :meth:`close`; their
    messages never quote the body.
    """

    def __init__(self, what: str, *, lean: bool, max_items: int = MAX_LISTED) -> None:
        self._what = what
        self._max_items = max_items
        self._build: Builder = lean_integration if lean else whole_integration
        self._items: list[Integration] = []
        self._done: list[Any] = sendable_list()
        # Floats as float, not Decimal: the converter reads a number as int or float.
        self._parser = ijson.items_coro(self._done, "items.item", use_float=True)
        # The envelope's first events, until ``items`` shows it is an array (then dropped).
        self._envelope: list[tuple[str, str, Any]] | None = sendable_list()
        self._watch: Any = ijson.parse_coro(self._envelope, use_float=True)
        self._started = False
        self._size = 0
        self._depth = _DepthGuard()

    def feed(self, chunk: bytes) -> None:
        """Parse one more piece of the body, keeping the items it completes."""
        for start in range(0, len(chunk), SLICE):
            piece = chunk[start : start + SLICE] if len(chunk) > SLICE else chunk
            self._size += len(piece)
            try:
                self._depth.feed(piece)
                self._parser.send(piece)
                if self._watch is not None:
                    self._watch.send(piece)
            except _BAD_JSON as exc:
                raise self._broken(exc) from None
            self._check_envelope()
            self._keep()

    def close(self) -> list[Integration]:
        """The body has ended: every item, or an error if it was cut short or not a listing."""
        if not self._size:
            raise ResponseFormatError(f"{self._what}: empty body, expected a JSON object")
        try:
            self._depth.close()
            self._parser.close()
            if self._watch is not None:
                self._watch.close()
        except _BAD_JSON as exc:
            raise self._broken(exc) from None
        self._check_envelope()
        self._keep()
        return self._items

    def _keep(self) -> None:
        base = len(self._items)
        if base + len(self._done) > self._max_items:
            raise ResponseFormatError(
                f"{self._what}: not a listing (more than {self._max_items} items, past any "
                "real account)"
            )
        build, what = self._build, self._what
        self._items.extend(
            build(item, what=f"{what} items[{base + index}]")
            for index, item in enumerate(self._done)
        )
        self._done.clear()

    def _check_envelope(self) -> None:
        """The converter's checks of an ``IntegrationCollection``, on the first events only."""
        if self._envelope is None:
            return
        for prefix, event, _ in self._envelope:
            if not self._started:
                self._started = True
                if event != "start_map":
                    self._refuse(f"expected an object, got {_kind(event)} @ $")
            elif prefix == "items" and event != "map_key":
                if event != "start_array":
                    self._refuse(f"expected an array, got {_kind(event)} @ $.items")
                # The items are an array: the rest is the item parser's.
                self._envelope = self._watch = None
                return
        self._envelope.clear()

    def _refuse(self, problem: str) -> None:
        raise ResponseFormatError(
            f"{self._what} does not match {IntegrationCollection.__name__}: {problem}"
        )

    def _broken(self, exc: Exception) -> ResponseFormatError:
        if isinstance(exc, _TooDeep):
            problem = f"{exc}, after {self._size} bytes"
            return ResponseFormatError(f"{self._what}: not a listing ({problem})")
        # The first line of yajl's message only: the rest quotes the body around the fault.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ResponseFormatError(
            f"{self._what}: not a complete JSON body ({reason}, after {self._size} bytes)"
        )


class _TooDeep(ValueError):
    """The body nests too deep for a listing, or too deep for the length of its keys."""


class _DepthGuard:
    """Follows the body's nesting on ijson's basic events, which carry no path.

    The walk over a piece's events runs in C (``accumulate`` over mapped steps), not a Python
    step per event. See :data:`MAX_DEPTH` and :data:`MAX_PATH_WORK` for what it refuses.
    """

    def __init__(self) -> None:
        self._events: list[tuple[str, Any]] = sendable_list()
        self._parser = ijson.basic_parse_coro(self._events, use_float=True)
        self._level = 0
        self._path_bytes = 0  # read since the nesting was last at an item's level or above

    def feed(self, piece: bytes) -> None:
        self._parser.send(piece)
        self._measure(len(piece))

    def close(self) -> None:
        self._parser.close()
        self._measure(0)

    def _measure(self, size: int) -> None:
        steps = map(_DEPTH_STEP.__getitem__, map(_event_name, self._events))
        levels = list(accumulate(steps, initial=self._level))
        self._events.clear()
        deepest = max(levels)
        if deepest > MAX_DEPTH:
            raise _TooDeep(f"nested deeper than {MAX_DEPTH} levels")
        if min(levels) <= _ITEM_LEVEL:
            self._path_bytes = size  # the path began in this piece
        else:
            self._path_bytes += size
        if deepest * self._path_bytes > MAX_PATH_WORK:
            raise _TooDeep(f"{deepest} levels deep over {self._path_bytes} bytes of one item")
        self._level = levels[-1]


def _kind(event: str) -> str:
    """How a JSON value that starts with ``event`` is named in an error."""
    return {
        "start_map": "object", "start_array": "array", "string": "str", "number": "number",
        "integer": "int", "double": "float", "boolean": "bool", "null": "NoneType",
    }.get(event, event)
