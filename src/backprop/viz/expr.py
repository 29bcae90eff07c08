"""Safe arithmetic expressions, e.g. "tanh(x1*w1 + x2*w2 + b)", turned into a graph of Values.

Parts separated by ``;`` may name a sub-expression, as the lecture does:
``n = x1*w1 + x2*w2 + b; o = tanh(n)``. A named part's node is labelled with its name (so a
step-through says ``n`` and ``o``), later parts use the name, and the last part is the output.

The text is parsed with Python's ``ast`` and checked against an allow-list: numbers, variable
names, ``+ - * / **``, unary ``-``/``+`` and calls of the functions in ``FUNCTIONS``. Nothing is
ever evaluated by Python: the checked tree is walked and each node becomes a Value operation.
Everything else (attributes, subscripts, other calls, lambdas, comprehensions, strings, huge
constants or exponents, ...) raises ``ExpressionError``, which points at the offending column.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..engine import Value

__all__ = [
    "ExpressionError",
    "Expression",
    "parse",
    "build",
    "FUNCTIONS",
    "MAX_LENGTH",
    "MAX_CONSTANT",
    "MAX_EXPONENT",
]

FUNCTIONS: dict[str, Callable[[Value], Value]] = {
    "tanh": Value.tanh,
    "exp": Value.exp,
    "log": Value.log,
    "sigmoid": Value.sigmoid,
    "relu": Value.relu,
    "sqrt": Value.sqrt,
    "abs": Value.abs,
    "sign": Value.sign,
}
MAX_LENGTH = 2000  # characters
MAX_DEPTH = 100  # nesting of the parsed tree; a flat chain x+y+z+... counts as one level
MAX_NODES = MAX_LENGTH  # size of the parsed tree (each part takes at least one character)
POINTER_WIDTH = 72  # characters of a long expression shown around the caret
MAX_CONSTANT = 1e12  # largest number literal
MAX_EXPONENT = 1000.0  # largest |k| in x ** k with a number k
LABEL_LENGTH = 24  # sub-expressions up to this long label their node, as in the notebook

_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_NAMED_OPERATORS = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.Invert: "~",
    ast.Not: "not",
}
_REFUSED = {  # what a user most likely tried, in words
    ast.Attribute: "attribute access (a.b) is not allowed",
    ast.Subscript: "indexing (a[i]) is not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.Compare: "comparisons are not allowed",
    ast.BoolOp: "'and' / 'or' are not allowed",
    ast.IfExp: "'if ... else' is not allowed",
    ast.NamedExpr: "':=' is not allowed",
    ast.JoinedStr: "strings are not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples are not allowed (one expression only)",
    ast.Set: "sets are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.Starred: "'*' unpacking is not allowed",
    ast.Await: "'await' is not allowed",
    ast.Yield: "'yield' is not allowed",
    ast.YieldFrom: "'yield' is not allowed",
}


class ExpressionError(ValueError):
    """An expression that is refused, with the column (0-based) it points at."""

    def __init__(self, message: str, expression: str, column: int = 0) -> None:
        self.message = message
        self.expression = expression
        self.column = max(0, min(column, len(expression)))
        self.missing: list[str] = []  # the variables without a value, for build()
        super().__init__(f"{message} (at column {self.column + 1})")

    def pointer(self) -> str:
        """The expression with a caret under the offending column (two lines). A long one is
        cut to ``POINTER_WIDTH`` characters around the column, with '...' where it was cut."""
        shown = re.sub(r"[\t\n\r\x00]", "\u21b5", self.expression.replace("\t", " "))
        column = self.column
        if len(shown) > POINTER_WIDTH:
            start = max(0, min(column - POINTER_WIDTH // 2, len(shown) - POINTER_WIDTH))
            end = start + POINTER_WIDTH
            head = "..." if start > 0 else ""
            shown = head + shown[start:end] + ("..." if end < len(shown) else "")
            column += len(head) - start
        return f"{shown}\n{' ' * column}^"


@dataclass(frozen=True)
class Expression:
    """A checked expression: its text, the parsed tree of its output, its variable names in
    order of appearance, and its parts ``(name, tree, source, column)`` in order: ``source``
    is the part's text, which starts at ``column`` of ``text``, and ``name`` is None for a
    last part that names nothing."""

    text: str
    tree: ast.Expression
    variables: tuple[str, ...]
    parts: tuple[tuple[str | None, ast.Expression, str, int], ...] = ()


def _column(text: str, node: ast.AST) -> int:
    """ast's col_offset counts UTF-8 bytes; the caret needs characters."""
    offset = getattr(node, "col_offset", 0) or 0
    return len(text.encode("utf-8")[:offset].decode("utf-8", errors="ignore"))


def _literal(node: ast.AST) -> float | None:
    """The number a literal (or a signed literal, -2) stands for, else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _literal(node.operand)
        if inner is None:
            return None
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    return None


_DEFINITION = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)")


def parse(text: str) -> Expression:
    """Check text against the allow-list; raise ExpressionError pointing at the first problem."""
    if not isinstance(text, str):
        raise TypeError(f"the expression must be a str, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression is {len(text)} characters long, more than {MAX_LENGTH}",
            text[:60] + "...",
            60,
        )
    bad = re.search(r"[\n\r\x00]", text)
    if bad:
        raise ExpressionError("the expression must be a single line", text, bad.start())
    if not text.strip():
        raise ExpressionError("the expression is empty", text, 0)
    variables: dict[str, None] = {}
    defined: dict[str, int] = {}  # name -> column of its definition
    used: set[str] = set()
    parts = []
    segments = _segments(text)
    budget = [MAX_NODES]
    for k, (start, segment) in enumerate(segments):
        match = _DEFINITION.match(segment)
        name = match.group(1) if match else None
        body = start + (match.end() if match else 0)
        if name is None and k < len(segments) - 1:
            column = start + len(segment) - len(segment.lstrip())
            raise ExpressionError("syntax error: each part before a ';' must name a "
                                  "sub-expression, as in n = x*w + b; o = tanh(n)", text,
                                  column)  # fmt: skip
        names: dict[str, None] = {}
        tree, source, lead = _parse_part(text, body, start + len(segment), names, budget)
        for used_name in names:
            if used_name in defined:
                used.add(used_name)
            else:
                variables.setdefault(used_name, None)
        if name is not None:
            _check_definition(text, start + match.start(1), name, variables, defined)
            defined[name] = start + match.start(1)
        parts.append((name, tree, source, lead))
    unused = [n for n in defined if n not in used and n != parts[-1][0]]
    if unused:
        raise ExpressionError(f"{unused[0]} is named but never used after its ';'", text,
                              defined[unused[0]])  # fmt: skip
    return Expression(text, parts[-1][1], tuple(variables), tuple(parts))


def _segments(text: str) -> list[tuple[int, str]]:
    """The ';'-separated parts of text with their starting columns (no ';' can be inside a
    part: strings are not allowed)."""
    out, start = [], 0
    for piece in text.split(";"):
        out.append((start, piece))
        start += len(piece) + 1
    return out


def _check_definition(text: str, column: int, name: str, variables, defined) -> None:
    if name in FUNCTIONS:
        raise ExpressionError(f"{name!r} is a function and cannot name a part", text, column)
    if name.startswith("__"):
        raise ExpressionError(f"names starting with '__' are not allowed, got {name!r}", text,
                              column)  # fmt: skip
    if name in defined:
        raise ExpressionError(f"{name} is named twice", text, column)
    if name in variables:
        raise ExpressionError(f"{name} is used before it is named here", text, column)


def _parse_part(
    text: str, begin: int, end: int, variables: dict[str, None], budget: list[int]
) -> tuple[ast.Expression, str, int]:
    """Parse and check text[begin:end], one expression; columns count from the whole text.
    Returns the tree, the part's text and the column it starts at."""
    part = text[begin:end]
    if not part.strip():
        message = "the expression is empty" if not text.strip(" ;") else "a part is empty"
        raise ExpressionError(message, text, begin)
    source = part.lstrip()  # ast refuses leading spaces; columns add them back
    lead = begin + len(part) - len(source)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as e:
        stop = lead + len(source.rstrip())
        if not e.offset or lead + e.offset - 1 >= stop:  # Python gives offset 0 at the end
            message = "the expression ends too early (an operand or ')' is missing)"
            raise ExpressionError(f"syntax error: {message}", text, stop) from None
        raise ExpressionError(f"syntax error: {e.msg}", text, lead + e.offset - 1) from None
    except (RecursionError, MemoryError):
        raise ExpressionError("the expression is too deeply nested", text, 0) from None

    def locate(node: ast.AST) -> int:
        return lead + _column(source, node)

    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:  # an explicit stack: depth is checked before anything recursive runs
        node, depth = stack.pop()
        budget[0] -= 1
        if depth > MAX_DEPTH:
            raise ExpressionError(f"the expression nests deeper than {MAX_DEPTH}", text,
                                  locate(node))  # fmt: skip
        if budget[0] < 0:
            raise ExpressionError(f"the expression has more than {MAX_NODES} parts", text,
                                  locate(node))  # fmt: skip
        children = _check(node, text, source, locate, variables)
        stack.extend((child, depth + _nesting(node, child)) for child in reversed(children))
    return tree, source, lead


_PRECEDENCE = {ast.Add: 1, ast.Sub: 1, ast.Mult: 2, ast.Div: 2}


def _nesting(parent: ast.AST, child: ast.AST) -> int:
    """0 for the left operand of a chain of one precedence (a+b-c+d, a*b/c), which is written
    flat however long it is; 1 for every other sub-expression."""
    if (
        isinstance(parent, ast.BinOp)
        and isinstance(child, ast.BinOp)
        and child is parent.left
        and _PRECEDENCE.get(type(parent.op)) is not None
        and _PRECEDENCE.get(type(parent.op)) == _PRECEDENCE.get(type(child.op))
    ):
        return 0
    return 1


def _check(
    node: ast.AST, text: str, source: str, locate, variables: dict[str, None]
) -> list[ast.AST]:
    """Refuse node unless allowed; return the children still to check."""

    def refuse(message: str, at: ast.AST = node):
        raise ExpressionError(message, text, locate(at))

    if isinstance(node, ast.BinOp):
        op = type(node.op)
        if op not in _OPERATORS:
            refuse(f"operator {_NAMED_OPERATORS.get(op, op.__name__)} is not supported "
                   "(use + - * / **)")  # fmt: skip
        if op is ast.Pow:
            k = _literal(node.right)
            if k is not None and abs(k) > MAX_EXPONENT:
                written = ast.get_source_segment(source, node.right) or repr(k)
                refuse(
                    f"exponent {_number_text(written)} is too large (the limit is "
                    f"{MAX_EXPONENT:g})",
                    node.right,
                )
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            refuse(f"operator {_NAMED_OPERATORS.get(type(node.op), '?')} is not supported")
        return [node.operand]
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute):
            refuse(_REFUSED[ast.Attribute], node.func)
        if not isinstance(node.func, ast.Name):
            refuse(f"only calls of {', '.join(FUNCTIONS)} are allowed", node.func)
        name = node.func.id
        if name not in FUNCTIONS:
            refuse(f"unknown function {name!r} (allowed: {', '.join(FUNCTIONS)})")
        if node.keywords:
            refuse(f"{name}() takes no keyword arguments")
        if len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            refuse(f"{name}() takes exactly one argument, got {len(node.args)}")
        return [node.args[0]]
    if isinstance(node, ast.Name):
        if node.id in FUNCTIONS:
            refuse(f"{node.id!r} is a function: write {node.id}(...)")
        if node.id.startswith("__"):
            refuse(f"names starting with '__' are not allowed, got {node.id!r}")
        if not node.id.isascii():
            refuse(f"variable names must be ASCII, got {node.id!r}")
        variables.setdefault(node.id, None)
        return []
    if isinstance(node, ast.Constant):
        value = node.value
        if type(value) not in (int, float):
            kind = {str: "strings", bytes: "strings", complex: "complex numbers",
                    bool: "True / False"}.get(type(value), repr(value))  # fmt: skip
            refuse(f"{kind} are not allowed: only real numbers" if kind.endswith("s")
                   else f"{kind} is not allowed: only real numbers")  # fmt: skip
        too_big = isinstance(value, int) and value.bit_length() > 64
        if too_big or not math.isfinite(float(value)) or abs(float(value)) > MAX_CONSTANT:
            written = _number_text(ast.get_source_segment(source, node) or value)
            refuse(f"the number {written} is too large (the limit is {MAX_CONSTANT:g})")
        return []
    refuse(_REFUSED.get(type(node), f"{type(node).__name__} is not allowed"))
    return []  # pragma: no cover - refuse() raised


def _number_text(x: float | int | str) -> str:
    text = x if isinstance(x, str) else repr(x)
    return text if len(text) <= 24 else text[:20] + "..."


def build(
    expression: str | Expression, values: Mapping[str, float]
) -> tuple[Value, dict[str, Value]]:
    """The expression as a graph of Values: returns (root, {variable name: leaf Value}).

    Each variable becomes one leaf labelled with its name (a variable used twice is one node
    used twice); sub-expressions up to ``LABEL_LENGTH`` characters label their node, as the
    notebook does by hand, and a named part (``n = ...;``) is labelled with its name. Every
    variable needs a value.
    """
    parsed = expression if isinstance(expression, Expression) else parse(expression)
    text = parsed.text
    parts = parsed.parts or ((None, parsed.tree, text.lstrip(), len(text) - len(text.lstrip())),)
    missing = [name for name in parsed.variables if name not in values]
    if missing:
        column = next(
            lead + _column(source, first)
            for _, tree, source, lead in parts
            if (first := _first_use(tree, missing[0])) is not None
        )
        error = ExpressionError(f"no value for {', '.join(missing)}", text, column)
        error.missing = missing
        raise error
    leaves = {
        name: Value(_checked_value(name, values[name]), label=name) for name in parsed.variables
    }
    scope = dict(leaves)
    for name, tree, source, _ in parts:
        root = _evaluate(tree.body, source, scope)
        if name is not None:
            if root._fn is not None and root.label not in scope:  # not a leaf or another name
                root.label = name
            scope[name] = root
    if not root.label or root.label in leaves and root is not leaves[root.label]:
        root.label = "out"
    return root, leaves


def _checked_value(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"the value of {name} must be a number, got {value!r}")
    return float(value)


def _first_use(tree: ast.AST, name: str) -> ast.AST | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == name:
            return node
    return None


def _evaluate(node: ast.AST, text: str, leaves: dict[str, Value]) -> Value:
    """Walk the checked tree bottom-up with an explicit stack, making one Value per node."""
    done: dict[int, Value] = {}
    stack: list[tuple[ast.AST, bool]] = [(node, False)]
    while stack:
        current, ready = stack.pop()
        if not ready:
            stack.append((current, True))
            stack.extend((c, False) for c in reversed(_operands(current)))
            continue
        done[id(current)] = _make(current, text, leaves, done)
    return done[id(node)]


def _operands(node: ast.AST) -> list[ast.AST]:
    """The sub-expressions that become Values (a number exponent or base stays a constant)."""
    if _literal(node) is not None:
        return []
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Pow):
            if _literal(node.right) is not None:
                return [node.left]
            if _literal(node.left) is not None:
                return [node.right]
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.Call):
        return [node.args[0]]
    return []


def _make(node: ast.AST, text: str, leaves: dict[str, Value], done: dict[int, Value]) -> Value:
    k = _literal(node)
    if k is not None:  # a number: a leaf labelled by how it was written
        return Value(k, label=ast.get_source_segment(text, node) or _number_text(k))
    if isinstance(node, ast.Name):
        return leaves[node.id]
    if isinstance(node, ast.BinOp):
        op = type(node.op)
        if op is ast.Pow and _literal(node.right) is not None:
            out = done[id(node.left)] ** _literal(node.right)
        elif op is ast.Pow and _literal(node.left) is not None:
            out = _literal(node.left) ** done[id(node.right)]
        else:
            a, b = done[id(node.left)], done[id(node.right)]
            out = {
                ast.Add: lambda: a + b,
                ast.Sub: lambda: a - b,
                ast.Mult: lambda: a * b,
                ast.Div: lambda: a / b,
                ast.Pow: lambda: a**b,
            }[op]()
    elif isinstance(node, ast.UnaryOp):
        operand = done[id(node.operand)]
        out = -operand if isinstance(node.op, ast.USub) else operand
        if out is operand:  # unary + makes no node
            return out
    else:  # a call of an allowed function
        out = FUNCTIONS[node.func.id](done[id(node.args[0])])
    segment = ast.get_source_segment(text, node) or ""
    if len(segment) <= LABEL_LENGTH:
        out.label = segment
    return out
