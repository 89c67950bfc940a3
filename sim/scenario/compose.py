"""Scenario documents that build on others: ``extends``, merged with the line of every value.

``extends: other.yaml`` (relative to the file; a bare name that is no file there names a shipped
scenario, :mod:`sim.scenario.shipped`) deep-merges this file over another:
mappings merge key by key, lists of named items (products, brands, markets, segments,
stores, targets, and the named policies: tariffs, subsidies) merge by ``name`` (or ``brand``+``market``+``channel``
for stores), other lists are replaced. An item with ``remove: true`` deletes the
inherited item of that name. Any list can instead be given as ``{append: [...]}`` (added
after the inherited items, e.g. extra ``events``) or ``{replace: [...]}`` (replaces the
inherited list, said explicitly).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.scenario.fields import REPLACES
from sim.scenario.policies import NAMED_POLICIES
from sim.scenario.shipped import is_bare_name, scenario_path
from sim.scenario.yamlio import Document, InputError, Location, Path_, Problem, format_path, load_yaml

#: Lists whose items merge by key instead of being replaced.
NAMED_LISTS: dict[str, tuple[str, ...]] = {
    "markets": ("name",),
    "segments": ("name",),
    "brands": ("name",),
    "products": ("name",),
    "targets": ("name",),
    "stores": ("brand", "market", "channel"),
    **{key: ("name",) for key in NAMED_POLICIES},
}
_STORE_DEFAULTS = {"market": "CN", "channel": "direct"}
#: ``key: {append: [...]}`` adds to an inherited list; ``key: {replace: [...]}`` replaces it explicitly.
LIST_OPERATIONS = ("append", "replace")


def _item_key(list_name: str, item: Any) -> tuple[Any, ...] | None:
    keys = NAMED_LISTS.get(list_name)
    if keys is None or not isinstance(item, dict):
        return None
    if list_name == "stores":
        return tuple(item.get(k, _STORE_DEFAULTS.get(k)) for k in keys)
    if keys[0] not in item:
        return None
    return tuple(item[k] for k in keys)


def _merge(
    base: Any,
    base_locs: dict[Path_, Location],
    over: Any,
    over_locs: dict[Path_, Location],
    bpath: Path_,
    opath: Path_,
    out_locs: dict[Path_, Location],
    list_name: str | None = None,
) -> Any:
    """Merge ``over`` onto ``base``; write the location of each merged path to ``out_locs``."""

    def copy_locs(src: dict[Path_, Location], from_path: Path_, to_path: Path_) -> None:
        n = len(from_path)
        for p, loc in src.items():
            if p[:n] == from_path:
                out_locs[to_path + p[n:]] = loc

    if isinstance(over, dict) and len(over) == 1 and next(iter(over)) in LIST_OPERATIONS:
        op, items = next(iter(over.items()))
        if not isinstance(items, list):
            raise InputError(Problem(f"'{op}' takes a list", over_locs.get(opath + (op,)), format_path(opath + (op,))))
        if op == "append" and base is not None and not isinstance(base, list):
            raise InputError(Problem("'append' applies to a list, but the inherited value is not one",
                                     over_locs.get(opath + (op,)), format_path(opath)))
        kept = list(base) if (op == "append" and isinstance(base, list)) else []
        if kept:
            copy_locs(base_locs, bpath, opath)
        n = len(kept)
        for p_, loc in over_locs.items():
            if p_[: len(opath) + 1] == opath + (op,) and len(p_) > len(opath) + 1:
                i = p_[len(opath) + 1]
                if isinstance(i, int):
                    out_locs[opath + (n + i,) + p_[len(opath) + 2 :]] = loc
        if opath in over_locs:
            out_locs[opath] = over_locs[opath]
        return kept + list(items)
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        copy_locs(base_locs, bpath, bpath if bpath == opath else opath)
        for key, value in over.items():
            if key in base:
                out[key] = _merge(
                    base[key], base_locs, value, over_locs, bpath + (key,), opath + (key,), out_locs, key
                )
            elif isinstance(value, dict) and len(value) == 1 and next(iter(value)) in LIST_OPERATIONS:
                out[key] = _merge(None, base_locs, value, over_locs, bpath + (key,), opath + (key,), out_locs, key)
            else:
                out[key] = value
                copy_locs(over_locs, opath + (key,), opath + (key,))
        for key in over:  # an explicit value replaces an inherited one derived from another key
            for replaced in REPLACES.get(key, ()):
                if replaced not in over:
                    out.pop(replaced, None)
        if opath in over_locs:
            out_locs[opath] = over_locs[opath]
        return out
    if isinstance(base, list) and isinstance(over, list) and list_name in NAMED_LISTS:
        # Merge by name; new items go at the end; `remove: true` deletes.
        merged: list[Any] = []
        merged_src: list[tuple[dict[Path_, Location], Path_]] = []
        index: dict[tuple[Any, ...], int] = {}
        for i, item in enumerate(base):
            key = _item_key(list_name, item)
            if key is not None:
                index[key] = len(merged)
            merged.append(item)
            merged_src.append((base_locs, bpath + (i,)))
        removed: set[int] = set()
        written: dict[tuple[Any, ...], int] = {}
        for j, item in enumerate(over):
            key = _item_key(list_name, item)
            if key is not None and key in written:
                # Two items of one file that update the same inherited item: the second would silently win.
                raise InputError(
                    Problem(
                        f"duplicate name '{'/'.join(map(str, key))}' (also {list_name}[{written[key]}] of this file)",
                        over_locs.get(opath + (j,)),
                        format_path(opath + (j,)),
                    )
                )
            if key is not None:
                written[key] = j
            if key is not None and key in index:
                k = index[key]
                if isinstance(item, dict) and item.get("remove") is True:
                    removed.add(k)
                    continue
                tmp: dict[Path_, Location] = {}
                src_locs, src_path = merged_src[k]
                merged[k] = _merge(merged[k], src_locs, item, over_locs, src_path, opath + (j,), tmp, None)
                merged_src[k] = (tmp, opath + (j,))
            else:
                if isinstance(item, dict) and item.get("remove") is True:
                    raise InputError(
                        Problem(
                            f"cannot remove '{key[0] if key else item}': no such item inherited",
                            over_locs.get(opath + (j,)),
                            format_path(opath + (j,)),
                        )
                    )
                merged.append(item)
                merged_src.append((over_locs, opath + (j,)))
        result: list[Any] = []
        for k, item in enumerate(merged):
            if k in removed:
                continue
            src_locs, src_path = merged_src[k]
            new_path = opath + (len(result),)
            n = len(src_path)
            for p, loc in src_locs.items():
                if p[:n] == src_path:
                    out_locs[new_path + p[n:]] = loc
            result.append(item)
        if opath in over_locs:
            out_locs[opath] = over_locs[opath]
        return result
    copy_locs(over_locs, opath, opath)
    return over


def resolve_document(path: str | Path, _chain: tuple[str, ...] = ()) -> Document:
    """Read a scenario file and everything it extends, merged, with locations."""
    path = Path(path)
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise InputError(
            Problem(
                f"a scenario must be a mapping of keys (name, start, ...), got {type(doc.data).__name__}",
                Location(str(path), 1),
            )
        )
    key = str(path.resolve())
    if key in _chain:
        raise InputError(
            Problem(
                "extends forms a cycle: " + " -> ".join(Path(c).name for c in _chain + (key,)),
                doc.where(("extends",)),
                "extends",
            )
        )
    parent = doc.data.get("extends")
    if parent is None:
        return doc
    if not isinstance(parent, str):
        raise InputError(Problem("must be a file path", doc.where(("extends",)), "extends"))
    parent_path = (path.parent / parent).resolve()
    if not parent_path.is_file() and is_bare_name(parent):
        try:
            parent_path = scenario_path(parent)  # a user's overlay of a shipped scenario, kept anywhere
        except InputError:
            pass
    if not parent_path.is_file():
        raise InputError(
            Problem(f"extends '{parent}', which does not exist ({parent_path})", doc.where(("extends",)), "extends")
        )
    base = resolve_document(parent_path, _chain + (key,))
    out_locs: dict[Path_, Location] = {}
    merged = _merge(base.data, base.locations, doc.data, doc.locations, (), (), out_locs)
    merged["extends"] = parent
    # The child's own 'name' wins; inherit nothing else silently.
    return Document(merged, out_locs, str(path))

