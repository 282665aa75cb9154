"""The bounded jinja2 sandbox that prompt templates render in (see :mod:`.templates`).

An immutable sandbox in which every value a template computes is bounded: the operators that
can make a value large (``*``, ``**``, ``+``, ``%`` and ``~``), method calls and filters that
pad, repeat or join are checked *before* they compute, lazy sequences are counted while they
are consumed, every other result is checked after. A value over a limit raises
:class:`TooLarge`, which :func:`producers.sdk.templates.render` turns into one
``TemplateError``. The limits are in :mod:`producers.sdk.limits`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from jinja2.utils import _PassArg, generate_lorem_ipsum, pass_context
from markupsafe import Markup

from producers.sdk.limits import (
    MAX_NESTING_DEPTH,
    TEMPLATE_MAX_INT_BITS,
    TEMPLATE_MAX_OUTPUT_CHARS,
)

__all__ = ["BoundedEnvironment", "TooLarge"]


class TooLarge(Exception):
    """A value inside a template would exceed a limit; mapped to :class:`TemplateError`."""


# -- measuring ----------------------------------------------------------------------------


def _weight(value: Any, limit: int = TEMPLATE_MAX_OUTPUT_CHARS) -> int:
    """About how many characters ``value`` takes as text (shared parts counted each time).

    Memoised per container, so a list holding one big list a thousand times costs a
    thousand steps, not its expansion; raises :class:`TooLarge` once over ``limit``.
    """
    memo: dict[int, int] = {}

    def weigh(item: Any, depth: int) -> int:
        if isinstance(item, str | bytes):
            return len(item)
        if item is None or isinstance(item, bool | float):
            return 5
        if isinstance(item, int):
            return 1 + item.bit_length() // 3  # about its decimal digits
        if isinstance(item, range):
            return len(item)
        if not isinstance(item, list | tuple | set | frozenset | dict):
            return 1
        known = memo.get(id(item))
        if known is not None:
            return known
        if depth > MAX_NESTING_DEPTH:
            raise TooLarge(f"a value nests deeper than {MAX_NESTING_DEPTH} levels")
        parts: Iterable[Any] = (
            (part for pair in item.items() for part in pair) if isinstance(item, dict) else item
        )
        total = 2
        for part in parts:
            total += 2 + weigh(part, depth + 1)
            if total > limit:
                break
        memo[id(item)] = total
        return total

    total = weigh(value, 0)
    if total > limit:
        raise TooLarge(f"a value would be larger than {limit:,} characters")
    return total


def _need(estimate: int, what: str) -> None:
    if estimate > TEMPLATE_MAX_OUTPUT_CHARS:
        raise TooLarge(
            f"{what} would make about {estimate:,} characters; "
            f"the limit is {TEMPLATE_MAX_OUTPUT_CHARS:,}"
        )


def _size_arg(value: Any, what: str) -> int:
    """An integer argument that sets a size (a width, a count): at most the output limit."""
    if isinstance(value, int) and not isinstance(value, bool):
        _need(value, what)
        return value
    return 0


def _bounded_list(items: Iterator[Any], what: str) -> list[Any]:
    """Consume a lazy sequence, refusing it once its items weigh more than the limit."""
    out: list[Any] = []
    total = 0
    for item in items:
        total += 2 + _weight(item)
        _need(total, what)
        out.append(item)
    return out


def _materialise(args: tuple[Any, ...], kwargs: dict[str, Any], what: str) -> tuple[Any, ...]:
    for key, value in kwargs.items():
        if isinstance(value, Iterator):
            kwargs[key] = _bounded_list(value, what)
    return tuple(_bounded_list(a, what) if isinstance(a, Iterator) else a for a in args)


_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_DIGITS = re.compile(r"\d+")


def _check_printf(fmt: str, args: Any) -> None:
    """``fmt % args``: widths and precisions may not exceed the output limit."""
    star = False
    for match in _PRINTF.finditer(fmt):
        for part in match.groups():
            if part == "*":
                star = True
            elif part is not None:
                _need(int(part) if len(part) < 10 else 10**10, f"the format {match.group()!r}")
    values = args if isinstance(args, tuple) else (args,)
    if star:
        for value in values:
            _size_arg(value, "a '*' width")
    _need(len(fmt) + _weight(args), "the % formatting")


def _check_spec(spec: str) -> None:
    """A ``str.format`` field's spec (``>999``, ``.5f``): its numbers within the limit."""
    for digits in _DIGITS.findall(spec):
        _need(int(digits) if len(digits) < 10 else 10**10, f"the format spec {spec!r}")


# -- filters, methods and globals ---------------------------------------------------------


def _text_of(value: Any) -> str:
    _weight(value)
    return value if isinstance(value, str) else str(value)


def _words(text: str) -> int:
    return text.count(" ") + text.count("\n") + text.count("\t") + 1


def _est_replace(text: str, old: Any, new: Any, count: Any) -> int:
    old, new = str(old), str(new)
    hits = len(text) + 1 if old == "" else text.count(old)
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(0, len(new) - len(old))


def _est_indent(s: Any, width: Any = 4, first: Any = False, blank: Any = False) -> int:
    text = _text_of(s)
    pad = len(width) if isinstance(width, str) else _size_arg(width, "indent width")
    return len(text) + (text.count("\n") + 1) * pad


def _est_wordwrap(s: Any, width: Any = 79, _b: Any = True, wrapstring: Any = None, *_: Any) -> int:
    text = _text_of(s)
    step = width if isinstance(width, int) and width > 0 else 1
    lines = _words(text) + len(text) // step + 1
    return len(text) + lines * len(str(wrapstring) if wrapstring is not None else "\n")


def _est_join(value: Any, d: Any = "", attribute: Any = None) -> int:
    if isinstance(value, str):
        count, size = len(value), len(value)
    else:
        if isinstance(value, list | tuple):
            items: list[Any] | tuple[Any, ...] = value
        elif isinstance(value, dict | set | frozenset | range):
            items = list(value)
        else:
            items = [value]
        count, size = len(items), sum(2 + _weight(item) for item in items)
    return size + len(_text_of(d)) * count


def _est_sum(iterable: Any, attribute: Any = None, start: Any = 0) -> int:
    if isinstance(start, int | float):
        return 0
    return _weight(start) + _weight(iterable)


def _est_batch(value: Any, linecount: Any, fill_with: Any = None) -> int:
    extra = _size_arg(linecount, "batch size") if fill_with is not None else 0
    return _weight(value) + extra * (2 + _weight(fill_with))


def _est_slice(value: Any, slices: Any, fill_with: Any = None) -> int:
    return _weight(value) + _size_arg(slices, "slice count") * (3 + _weight(fill_with))


def _est_tojson(value: Any, indent: Any = None) -> int:
    pad = _size_arg(indent, "tojson indent") if isinstance(indent, int) else 0
    return _weight(value) * (2 + pad * 8)


def _est_urlize(value: Any, *args: Any, **kwargs: Any) -> int:
    text = _text_of(value)
    extra = sum(len(str(v)) for v in (*args[1:], *kwargs.values()) if isinstance(v, str))
    return 2 * len(text) + _words(text) * (64 + extra)


def _est_format(value: Any, *args: Any, **kwargs: Any) -> int:
    text = _text_of(value)
    _check_printf(text, tuple(args) or kwargs)
    return 0


#: Estimates of a filter's result size, from its arguments, before it runs.
_FILTER_ESTIMATES: dict[str, Callable[..., int]] = {
    "center": lambda value, width=80: max(_weight(value), _size_arg(width, "center width")),
    "indent": _est_indent,
    "wordwrap": _est_wordwrap,
    "replace": lambda s, old, new, count=None: _est_replace(_text_of(s), old, new, count),
    "join": _est_join,
    "sum": _est_sum,
    "batch": _est_batch,
    "slice": _est_slice,
    "tojson": _est_tojson,
    "urlize": _est_urlize,
    "format": _est_format,
}


def _checked_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with its lazy inputs counted, its result size estimated before and checked
    after. Always ``pass_context``: jinja2 then never runs it at compile time."""
    passes = _PassArg.from_obj(func)
    estimate = _FILTER_ESTIMATES.get(name)
    what = f"the filter {name!r}"

    @pass_context
    def checked(context: Context, *args: Any, **kwargs: Any) -> Any:
        args = _materialise(args, kwargs, what)
        if estimate is not None:
            _need(estimate(*args, **kwargs), what)
        if passes is _PassArg.context:
            result = func(context, *args, **kwargs)
        elif passes is _PassArg.eval_context:
            result = func(context.eval_ctx, *args, **kwargs)
        elif passes is _PassArg.environment:
            result = func(context.environment, *args, **kwargs)
        else:
            result = func(*args, **kwargs)
        if not isinstance(result, Iterator):
            _weight(result)
        return result

    checked.__name__ = getattr(func, "__name__", name)
    checked.__doc__ = func.__doc__
    return checked


def _est_str_method(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """The result size of a ``str`` method that can grow its string, or 0."""
    if name in ("center", "ljust", "rjust", "zfill"):
        width = args[0] if args else kwargs.get("width", 0)
        return max(len(text), _size_arg(width, f"str.{name}"))
    if name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        return len(text) + text.count("\t") * _size_arg(size, "str.expandtabs")
    if name == "replace":
        old, new = [*args, "", ""][:2]
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        return _est_replace(text, old, new, count)
    if name == "join" and args:
        return _est_join(args[0], text)
    if name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((len(str(v)) for v in args[0].values() if v is not None), default=1)
        return len(text) * max(1, longest)
    return 0


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    _need(_size_arg(n, "lipsum n") * _size_arg(max, "lipsum max") * 12, "lipsum")
    return generate_lorem_ipsum(n=n, html=html, min=min, max=max)


def _check_field(value: Any, format_spec: str) -> None:
    _check_spec(format_spec)
    _weight(value)


class _CheckedFormatter(SandboxedFormatter):
    """``str.format`` in the sandbox, with each field's spec and value size checked."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        _check_field(value, format_spec)
        return super().format_field(value, format_spec)


class _CheckedEscapeFormatter(SandboxedEscapeFormatter):
    """``Markup.format`` in the sandbox, checked like :class:`_CheckedFormatter`."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        _check_field(value, format_spec)
        return super().format_field(value, format_spec)


# -- the environment ----------------------------------------------------------------------


class _CheckedCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` to a join whose size is checked before it is made."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        join = "str_join" if not frame.eval_ctx.autoescape else "markup_join"
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        self.write(f"environment.checked_join({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox with every way to make a large value checked (module docstring)."""

    code_generator_class = _CheckedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            finalize=self._finalize,
        )
        self.filters = {name: _checked_filter(name, f) for name, f in self.filters.items()}
        self.globals["lipsum"] = _lipsum

    @staticmethod
    def _finalize(value: Any) -> Any:
        _weight(value)  # before it is turned into text
        return value

    def concat(self, parts: Iterable[str]) -> str:
        """Join a block's output (a macro, ``{% set %}...``), refusing it once too large."""
        return "".join(_bounded_list(iter(parts), "a block's output"))

    def checked_join(self, join: Callable[[Iterable[Any]], str], parts: tuple[Any, ...]) -> str:
        """``a ~ b ~ c``, refused before joining when the parts are too large together."""
        _need(sum(_weight(part) for part in parts), "the '~' concatenation")
        return join(parts)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """``*``, ``**``, ``+`` and ``%``, refused before computing a too large result."""
        numbers = all(isinstance(v, int) and not isinstance(v, bool) for v in (left, right))
        if operator == "*":
            if numbers:
                _bits(left.bit_length() + right.bit_length())
            elif isinstance(right, int) and isinstance(left, str | list | tuple):
                _need(_weight(left) * right, "the '*' repetition")
            elif isinstance(left, int) and isinstance(right, str | list | tuple):
                _need(_weight(right) * left, "the '*' repetition")
        elif operator == "**" and numbers and right > 0 and abs(left) > 1:
            _bits(right * abs(left).bit_length())
        elif operator == "+" and not numbers:
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                _need(_weight(left) + _weight(right), "the '+' concatenation")
        elif operator == "%" and isinstance(left, str):
            _check_printf(left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Call a function or method, refusing one that would make a too large value."""
        what = f"the call of {getattr(__obj, '__name__', 'a function')!r}"
        args = _materialise(args, kwargs, what)
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            _need(_est_str_method(owner, getattr(__obj, "__name__", ""), args, kwargs), what)
        result = super().call(__context, __obj, *args, **kwargs)
        if not isinstance(result, Iterator):
            _weight(result)
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format``/``format_map`` through a formatter that checks every field."""
        if super().wrap_str_format(value) is None:
            return None
        template: str = value.__self__
        formatter: SandboxedFormatter = (
            _CheckedEscapeFormatter(self, escape=template.escape)
            if isinstance(template, Markup)
            else _CheckedFormatter(self)
        )
        is_map = value.__name__ == "format_map"

        @functools.wraps(value)
        def checked(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one positional argument")
                return type(template)(formatter.vformat(template, (), args[0]))
            return type(template)(formatter.vformat(template, args, kwargs))

        return checked


def _bits(bits: int) -> None:
    if bits > TEMPLATE_MAX_INT_BITS:
        raise TooLarge(
            f"a number would have about {bits:,} bits; the limit is {TEMPLATE_MAX_INT_BITS:,}"
        )
