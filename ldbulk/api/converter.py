"""The one cattrs converter for LaunchDarkly's JSON, and a ``structure`` that never leaks cattrs.

Field names map to the API's camelCase (``project_key`` -> ``projectKey``) unless a field names
its API key in ``metadata={"api": ...}`` (``_id``, ``_links``, ``_status``, ``_access``).
Unknown fields are ignored, since LaunchDarkly adds fields without notice; a field of the
wrong type is an error, since cattrs' default of coercing (``bool("false") is True``) would
silently misread a response. The exception: members of ``_links``, which the spec leaves open
and ldbulk does not read (but a page's ``next``), are dropped when they are not links.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.v import format_exception

# api_name reads the field table's `api` key; the converter's users import it from here too.
from ldbulk.api.models import api_name as api_name
from ldbulk.api.resources import Link, PageLinks
from ldbulk.errors import ResponseFormatError

T = TypeVar("T")


def _strict(kind: type[Any], label: str) -> Callable[[Any, type[Any]], Any]:
    def structure(value: Any, _: type[Any]) -> Any:
        # bool is a subclass of int in Python, but not in JSON.
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise TypeError(f"expected {label}, got {type(value).__name__}")
        return value

    return structure


def _is_array(kind: Any) -> bool:
    """``tuple[X, ...]``: how the models spell a JSON array."""
    args = get_args(kind)
    return get_origin(kind) is tuple and len(args) == 2 and args[1] is Ellipsis


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=False)
    converter.register_structure_hook(str, _strict(str, "a string"))
    converter.register_structure_hook(bool, _strict(bool, "a boolean"))
    converter.register_structure_hook(int, _strict(int, "an integer"))
    converter.register_structure_hook(float, _strict((int, float), "a number"))  # type: ignore[arg-type]

    def structure_factory(cls: type[Any]) -> Callable[[Any, type[Any]], Any]:
        renames = {f.name: override(rename=api_name(f)) for f in attrs.fields(cls)}
        structure_fields = make_dict_structure_fn(cls, converter, **renames)  # type: ignore[arg-type]

        def structure_object(value: Any, kind: type[Any]) -> Any:
            # cattrs reads any value with `in` and `[]`: a list or a string would pass as an
            # object whose fields are all absent.
            if not isinstance(value, Mapping):
                raise TypeError(f"expected an object, got {type(value).__name__}")
            return structure_fields(value, kind)

        return structure_object

    def array_factory(kind: type[Any]) -> Callable[[Any, type[Any]], Any]:
        structure_items = homogenous_tuple_structure_factory(kind, converter)

        def structure_array(value: Any, kind: type[Any]) -> Any:
            # cattrs turns any iterable into a tuple: "abc" would become ("a", "b", "c").
            if not isinstance(value, list | tuple):
                raise TypeError(f"expected an array, got {type(value).__name__}")
            return structure_items(value, kind)

        return structure_array

    def unstructure_factory(cls: type[Any]) -> Callable[[Any], Any]:
        renames = {f.name: override(rename=api_name(f)) for f in attrs.fields(cls)}
        return make_dict_unstructure_fn(cls, converter, **renames)  # type: ignore[arg-type]

    converter.register_structure_hook_factory(attrs.has, structure_factory)
    converter.register_structure_hook_factory(_is_array, array_factory)
    converter.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    _register_links(converter)
    return converter


def _register_links(converter: cattrs.Converter) -> None:
    """``_links``: a map of links, of which only the well-formed ones are kept.

    The spec lets ``_links`` carry members it does not name, of any type (an integration's
    ``BigSegmentStoreIntegrationLinks`` names four links and closes nothing), and ldbulk reads
    no link but a page's ``next``: one odd member must not fail a whole listing, so a member
    that is not link-shaped is dropped. Not a page's ``next`` (:data:`PageLinks`): dropped, it
    would end a listing early without a word, so it stays an error, as does a ``_links`` that
    is not an object at all. Those go the generic way, which names the JSON path.

    Built directly, not by the generic hooks: structured generically, the links are half the
    cost of an integration (a class per link, with validation per field).
    """
    links_type = Mapping[str, Link]
    generic = converter.get_structure_hook(links_type)

    def links_hook(followed: frozenset[str]) -> Callable[[Any, Any], Any]:
        def structure_links(value: Any, _: Any) -> Any:
            if not isinstance(value, Mapping):
                return generic(value, links_type)
            links = {}
            for name, link in value.items():
                if isinstance(link, Mapping):
                    href, link_type = link.get("href"), link.get("type")
                    if _optional_str(href) and _optional_str(link_type):
                        links[name] = Link(href=href, type=link_type)
                        continue
                if name in followed:
                    links.update(generic({name: link}, links_type))
            return links

        return structure_links

    converter.register_structure_hook_func(lambda kind: kind == links_type, links_hook(frozenset()))
    converter.register_structure_hook_func(
        lambda kind: kind == PageLinks, links_hook(frozenset({"next"}))
    )


def _optional_str(value: object) -> bool:
    return value is None or type(value) is str


converter = _make_converter()


def _problems(exc: BaseException, path: str) -> list[str]:
    """Like ``cattrs.transform_error``, but a class field's path uses its JSON name.

    cattrs' notes carry the Python attribute name (``id``, ``status``), which is not what a
    reader of the response sees (``_id``, ``_status``).
    """
    if isinstance(exc, cattrs.IterableValidationError):
        indexed, without = exc.group_exceptions()
        steps = [(sub, f"{path}[{note.index!r}]", note.type) for sub, note in indexed]
    elif isinstance(exc, cattrs.ClassValidationError):
        named, without = exc.group_exceptions()
        fields = attrs.fields_dict(get_origin(exc.cl) or exc.cl)
        steps = [(sub, f"{path}.{api_name(fields[note.name])}", note.type) for sub, note in named]
    else:
        return [f"{format_exception(exc, None)} @ {path}"]
    problems: list[str] = []
    for sub, sub_path, sub_type in steps:
        if isinstance(sub, cattrs.BaseValidationError):
            problems.extend(_problems(sub, sub_path))
        else:
            problems.append(f"{format_exception(sub, sub_type)} @ {sub_path}")
    problems.extend(f"{format_exception(sub, None)} @ {path}" for sub in without)
    return problems


def structure(data: Any, cls: type[T], *, what: str = "response") -> T:
    """Structure JSON data into ``cls``, raising :class:`ResponseFormatError` naming the fields.

    The message lists each bad field by its JSON path (``$.items[3]._id``) and what was
    expected; it never quotes values, which may be secrets.
    """
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            problems = _problems(exc, "$")
        else:
            problems = [f"{format_exception(exc, cls)} @ $"]
        raise ResponseFormatError(
            f"{what} does not match {cls.__name__}: " + "; ".join(problems)
        ) from None


def unstructure(value: Any) -> Any:
    """JSON-ready data for an attrs value, with the API's field names."""
    return converter.unstructure(value)
