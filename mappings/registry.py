"""The transform registry: one decorated function per transform, carrying its own examples.

Why examples live on the decorator: the test suite runs every example and ``docs/transforms.md``
is generated from them, so the reference cannot drift from the code (the Bloblang idea).

A transform is a plain function ``fn(value, *params)``. The registry binds the params once, at
load time (validating their types from the annotations), so the per-record call is one call of a
``functools.partial``. ``None`` is passed through untouched unless the transform says
``accepts_none=True`` (``default``, ``coalesce``, ``template``).

Reversibility (``inverse=``) is what lets one ``both`` field serve both directions:

* ``IDENTITY`` — a normaliser: its output is already a valid native value (``strip``, ``email``);
* a function with the same params — the exact inverse (``decimal`` ↔ its string form);
* ``None`` — not invertible; a ``both`` field using it needs an explicit ``out_transform``.

Example::

    @transform(examples=[Ex("  Jan ", "Jan")], inverse=IDENTITY)
    def strip(value: str) -> str:
        '''Remove leading and trailing whitespace.'''
        return value.strip()
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, get_type_hints

from pydantic import TypeAdapter, ValidationError

from mappings.errors import TransformArgError


class Resolver(Protocol):
    """Translates foreign ids through the cross-reference table; the sync core supplies it."""

    def canonical_id(self, entity: str, system: str, native_id: str) -> str | None: ...

    def native_id(self, entity: str, system: str, canonical_id: str) -> str | None: ...


@dataclass
class Context:
    """What a context-aware transform may see besides its value.

    ``record`` is the whole source record (native on the way in, canonical on the way out),
    ``system`` the mapping's system, ``resolver`` the cross-reference lookup (may be None
    when mapping offline, e.g. in ``synchub mappings preview``).
    """

    record: Any = None
    system: str = ""
    resolver: Resolver | None = None


class _Identity:
    def __repr__(self) -> str:
        return "IDENTITY"


IDENTITY: Final = _Identity()
"""Marks a normalising transform whose output is already acceptable as native input."""


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE: Final = _NoValue()


@dataclass(frozen=True)
class Ex:
    """An example: ``input`` through the transform with ``params`` gives ``output``.

    ``fails=True`` means the input must be rejected with a TransformError. ``record`` is the
    source record seen by context-aware transforms. Examples are run by the test suite and shown
    in docs/transforms.md.
    """

    input: Any
    output: Any = NO_VALUE
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    fails: bool = False
    record: Any = None
    note: str = ""


def Fails(value: Any, *args: Any, note: str = "", record: Any = None, **kwargs: Any) -> Ex:
    """An example input that the transform must reject."""
    return Ex(value, NO_VALUE, args, kwargs, True, record, note)


def ExP(value: Any, output: Any, *args: Any, note: str = "", record: Any = None, **kwargs: Any) -> Ex:
    """An example with params, written in call order: ``ExP("x", "X", region="PL")``."""
    return Ex(value, output, args, kwargs, False, record, note)


Step = Callable[..., Any]
InverseSpec = Callable[..., Any] | _Identity | None


@dataclass
class TransformDef:
    """A registered transform and everything known about it."""

    name: str
    func: Callable[..., Any]
    doc: str
    examples: list[Ex]
    inverse: InverseSpec
    accepts_none: bool
    context: bool
    params: list[inspect.Parameter]
    adapters: dict[str, TypeAdapter[Any]]

    @property
    def signature(self) -> str:
        parts = []
        for p in self.params:
            if p.kind is inspect.Parameter.VAR_POSITIONAL:
                parts.append(f"*{p.name}")
            elif p.default is inspect.Parameter.empty:
                parts.append(p.name)
            else:
                parts.append(f"{p.name}={p.default!r}")
        return f"{self.name}({', '.join(parts)})" if parts else self.name

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> BoundTransform:
        """Check ``args``/``kwargs`` against the signature and types; raise TransformArgError."""
        fake = inspect.Signature(self.params)
        named = [p.name for p in self.params if p.kind is not inspect.Parameter.VAR_POSITIONAL]
        open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in self.params)
        for key in kwargs:
            if key not in named and not open_ended:  # a typo: say which parameters there are, not only the signature
                close = difflib.get_close_matches(key, named, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (it takes: {', '.join(named) or 'none'})"
                raise TransformArgError(f"{self.signature} has no parameter {key!r}{hint}")
        try:
            bound = fake.bind(*args, **kwargs)
        except TypeError as exc:
            raise TransformArgError(f"{self.signature}: {exc}") from None
        for name, value in list(bound.arguments.items()):
            adapter = self.adapters.get(name)
            if adapter is None:
                continue
            try:
                bound.arguments[name] = adapter.validate_python(value)
            except ValidationError as exc:
                first = exc.errors()[0]
                raise TransformArgError(f"{self.name}: parameter {name!r}: {first['msg']} (got {value!r})") from None
        return BoundTransform(self, tuple(bound.args), dict(bound.kwargs))


@dataclass(frozen=True)
class BoundTransform:
    """A transform with its params fixed: ``step`` is what runs per record."""

    definition: TransformDef
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def label(self) -> str:
        """The step as an integrator would write it, for error messages."""
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.name}({', '.join(parts)})" if parts else self.name

    @functools.cached_property
    def step(self) -> Step:
        return _bind(self.definition.func, self.args, self.kwargs, self.definition.context)

    def inverse_step(self) -> Step | _Identity | None:
        """The out-direction step, ``IDENTITY``, or None when not invertible.

        An inverse may carry ``check_invertible(*params)`` to refuse params it cannot invert
        (a value table whose values repeat); that refusal is a load-time TransformArgError.
        """
        inv = self.definition.inverse
        if inv is None or isinstance(inv, _Identity):
            return inv
        check = getattr(inv, "check_invertible", None)
        if check is not None:
            check(*self.args, **self.kwargs)
        return _bind(inv, self.args, self.kwargs, self.definition.context)


def _bind(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], context: bool) -> Step:
    """Fix a transform's params so the per-record call is ``step(value)`` or ``step(value, ctx)``."""
    if not args and not kwargs:
        return func
    if context:
        return lambda value, ctx: func(value, ctx, *args, **kwargs)
    if not args:
        return functools.partial(func, **kwargs)
    return lambda value: func(value, *args, **kwargs)


REGISTRY: dict[str, TransformDef] = {}


def transform(
    name: str | None = None,
    *,
    examples: list[Ex] | None = None,
    inverse: InverseSpec = None,
    accepts_none: bool = False,
    context: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func`` as a transform. See the module docstring for the contract.

    ``context=True``: the function is called as ``func(value, ctx, *params)`` with a
    :class:`Context`. Registration fails loudly on a duplicate name or a missing docstring,
    because the docs are generated from it.
    """

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        tname = name or func.__name__.rstrip("_")
        if tname in REGISTRY:
            raise ValueError(f"transform {tname!r} registered twice")
        if not func.__doc__:
            raise ValueError(f"transform {tname!r} needs a docstring: docs/transforms.md is built from it")
        if not examples:
            raise ValueError(f"transform {tname!r} needs at least one example")
        sig = inspect.signature(func)
        params = list(sig.parameters.values())[2 if context else 1 :]
        hints = get_type_hints(func, include_extras=True)  # keep Annotated[...] validators
        adapters: dict[str, TypeAdapter[Any]] = {}
        for p in params:
            hint = hints.get(p.name)
            if hint is not None and p.kind is not inspect.Parameter.VAR_POSITIONAL:
                adapters[p.name] = TypeAdapter(hint)
        REGISTRY[tname] = TransformDef(
            name=tname,
            func=func,
            doc=inspect.cleandoc(func.__doc__),
            examples=list(examples),
            inverse=inverse,
            accepts_none=accepts_none,
            context=context,
            params=params,
            adapters=adapters,
        )
        return func

    return register


def get_transform(name: str) -> TransformDef:
    """Look a transform up by name; callers turn a KeyError into a load error with suggestions."""
    _ensure_builtins()
    return REGISTRY[name]


def all_transforms() -> dict[str, TransformDef]:
    _ensure_builtins()
    return dict(sorted(REGISTRY.items()))


def _ensure_builtins() -> None:
    # Imported lazily so that registry.py has no import cycle with the built-in transforms.
    import mappings.transforms  # noqa: F401
