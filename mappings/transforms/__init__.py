"""The built-in transforms, registered in ``mappings.registry`` on import.

Each transform is a plain function ``fn(value, *params)`` (``fn(value, ctx, *params)`` for the
context-aware ones) carrying its examples; ``docs/transforms.md`` is generated from them
(``uv run python -m mappings.docs``). Grouped by kind:

* ``text`` — strip, lower, upper, title, empty_to_none, str, truncate, regex_replace,
  split_name, email, phone_e164;
* ``numeric`` — decimal, money, int, bool;
* ``dates`` — date, datetime;
* ``tables`` — map, default, country_iso2;
* ``structure`` — join, split, first, coalesce, template;
* ``ids`` — lookup, gid.

Hot-path rules: these run once per field per record, so nothing is computed per call that can
be cached (regexes, parsed templates and phone numbers go through ``functools.lru_cache``, map
tables remember their reverse), and pydantic is used only to check parameters at load time.
"""

from __future__ import annotations

from mappings.transforms import dates, ids, numeric, structure, tables, text

__all__ = ["dates", "ids", "numeric", "structure", "tables", "text"]
