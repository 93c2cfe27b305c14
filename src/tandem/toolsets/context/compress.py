"""A source file's skeleton for ``pack_codebase(compress=True)``: imports, signatures, class, struct, interface and
function headers, type declarations, comments and docstrings kept; function and method bodies replaced by a marker.

One tree-sitter query per language names the bodies to drop (the query runs in C, so a file costs one parse and
one query); everything the query does not name is kept byte for byte. A brace body becomes ``{ /* … */ }`` (a
comment, so the skeleton still parses), a Python body ``...`` after its docstring, a Ruby body ``# …``. CSS keeps
selectors and at-rules and drops declaration blocks. A Vue file keeps its template, and its ``<script>`` and plain
CSS ``<style>`` blocks are compressed as their own language. Top-level code that is not in a function (constants,
module statements) is kept. So is a JavaScript, TypeScript or Python body that defines functions or classes of its
own (a UMD factory, an IIFE, ``define``, ``describe``, a class factory): it is treated as a module, and the bodies
inside it are cut instead. A file whose tree has an error, or a minified one, is not compressed: its full text is
sent, and the pack lists it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from tree_sitter import Node, Query, QueryCursor

from tandem.core import syntax_trees

BLOCK = "{ /* … */ }"
"""What a dropped brace body becomes: a comment inside braces, so the skeleton still parses and says it was cut."""

# Captures: @block is replaced by BLOCK; @expression (a body that may be a bare expression: JS arrow functions,
# Kotlin) too, when it is in braces or spans lines; @inner (a body without its own braces or ``end``) by the
# language's inner marker; @declarations (a CSS block) by BLOCK when it holds only declarations; @python by ``...``
# after the body's docstring.
_C_LIKE = "(function_definition body: (compound_statement) @block)"
_JS = """
(function_declaration body: (statement_block) @block)
(generator_function_declaration body: (statement_block) @block)
(function_expression body: (statement_block) @block)
(method_definition body: (statement_block) @block)
(class_static_block body: (statement_block) @block)
(arrow_function body: (_) @expression)
"""
QUERIES: dict[str, str] = {
    "c": _C_LIKE,
    "cpp": _C_LIKE + " (lambda_expression body: (compound_statement) @block)",
    "csharp": """
(method_declaration body: (block) @block)
(constructor_declaration body: (block) @block)
(destructor_declaration body: (block) @block)
(operator_declaration body: (block) @block)
(conversion_operator_declaration body: (block) @block)
(local_function_statement body: (block) @block)
(accessor_declaration body: (block) @block)
(lambda_expression body: (block) @block)
(anonymous_method_expression (block) @block)
""",
    "css": "(block) @declarations (keyframe_block_list) @block",
    "dart": "(function_body (block) @block) (function_expression_body (block) @block)",
    "go": """
(function_declaration body: (block) @block)
(method_declaration body: (block) @block)
(func_literal body: (block) @block)
""",
    "java": """
(method_declaration body: (block) @block)
(constructor_declaration body: (constructor_body) @block)
(compact_constructor_declaration body: (block) @block)
(lambda_expression body: (block) @block)
(static_initializer (block) @block)
""",
    "javascript": _JS,
    "kotlin": """
(function_body) @expression
(secondary_constructor (statements) @inner)
(anonymous_initializer (statements) @inner)
""",
    "php": """
(function_definition body: (compound_statement) @block)
(method_declaration body: (compound_statement) @block)
(anonymous_function body: (compound_statement) @block)
""",
    "python": "(function_definition body: (block) @python)",
    "ruby": "(method body: (body_statement) @inner) (singleton_method body: (body_statement) @inner)",
    "rust": "(function_item body: (block) @block) (closure_expression body: (block) @block)",
    "solidity": """
(function_definition body: (function_body) @block)
(constructor_definition body: (function_body) @block)
(modifier_definition body: (function_body) @block)
(fallback_receive_definition body: (function_body) @block)
""",
    "swift": """
(function_declaration body: (function_body) @block)
(init_declaration body: (function_body) @block)
(deinit_declaration body: (function_body) @block)
(computed_property) @block
(lambda_literal (statements) @inner)
""",
    "typescript": _JS,
    "tsx": _JS,
}
INNER = {"ruby": "# …"}
"""The marker for an @inner body where ``/* … */`` is not a comment."""
LANGUAGES: tuple[str, ...] = (*sorted(QUERIES), "vue")
"""The languages whose files are compressed; a file of any other language is packed whole."""
_VUE_SCRIPTS = {"ts": "typescript", "tsx": "tsx", "js": "javascript", "jsx": "javascript", "": "javascript"}
_LANG = re.compile(r"""\blang\s*=\s*["']?([a-z]*)""")


class Unparsable(Exception):
    """The file's tree has an error, so it cannot be cut safely; the message says where."""


class Minified(Exception):
    """The file is minified (lines far longer than a person writes): its skeleton would be one line of noise, so it is
    sent whole."""


MINIFIED_AVERAGE_LINE = 500
MINIFIED_LONGEST_LINE = 5000
"""Line lengths (characters) past which a file counts as minified: on average, or for any one line."""


@dataclass(frozen=True, slots=True)
class Compressed:
    text: str
    lines: tuple[int, ...]
    """The original line number of each line of ``text`` (jumps where a body was dropped)."""


def language_for(path: str) -> str | None:
    """The language ``path`` is compressed as, if compression supports it."""
    language = syntax_trees.language_of(Path(path))
    return language if language in LANGUAGES else None


def compress_files(files: list[tuple[str, str]]) -> list[Compressed | str]:
    """Each ``(text, language)`` compressed, or why it cannot be (a module-level function: it runs in a worker
    process, or in a thread). C that does not parse is tried as C++: ``.h`` names C++ headers too."""
    outcomes: list[Compressed | str] = []
    for text, language in files:
        try:
            outcomes.append(compress(text, language))
        except Minified as exc:
            outcomes.append(str(exc))
        except Unparsable as exc:
            outcomes.append(_as_cpp(text) if language == "c" else str(exc))
    return outcomes


def _as_cpp(text: str) -> Compressed | str:
    try:
        return compress(text, "cpp")
    except Unparsable as exc:
        return str(exc)


def compress(text: str, language: str) -> Compressed:
    """The skeleton of ``text`` in ``language`` (one of ``LANGUAGES``); ``Unparsable`` if its tree has an error,
    ``Minified`` if it is minified."""
    lines = text.split("\n")
    if len(text) > MINIFIED_AVERAGE_LINE * len(lines) or max(map(len, lines)) > MINIFIED_LONGEST_LINE:
        raise Minified("minified")
    source = text.encode()
    edits = _vue_edits(source) if language == "vue" else _edits(source, language)
    return _apply(source, edits)


Edit = tuple[int, int, str]
"""A byte range of the source and what replaces it."""


def _parse(source: bytes, language: str, row: int = 0, where: str = "") -> Node:
    """The tree of ``source`` (which starts on line ``row + 1`` of its file), or ``Unparsable`` naming the line."""
    root = syntax_trees.parser(language).parse(source).root_node
    if root.has_error:
        raise Unparsable(f"does not parse as {language} (line {_error_line(root) + row}{where})")
    return root


def _error_line(node: Node) -> int:
    """The 1-based line of the first error or missing node under ``node``."""
    while True:
        child = next((c for c in node.children if c.is_error or c.is_missing or c.has_error), None)
        if child is None or child.is_error or child.is_missing:
            return (child or node).start_point.row + 1
        node = child


@functools.cache
def _query(language: str) -> Query:
    return Query(syntax_trees.language(language), QUERIES[language])


def _edits(source: bytes, language: str, offset: int = 0, row: int = 0, where: str = "") -> list[Edit]:
    """The bodies to drop from ``source`` (a piece of its file from byte ``offset``, line ``row + 1``), outermost
    first, none nested: a body inside a dropped one goes with it. A body that declares functions or classes of its
    own (a UMD factory, an IIFE, ``define``, ``describe``, a class factory) is a module in all but name: it is kept
    and its inner bodies are cut instead."""
    root = _parse(source, language, row, where)
    captured = QueryCursor(_query(language)).captures(root)
    found = sorted(
        ((node, kind) for kind, nodes in captured.items() for node in nodes),
        key=lambda pair: (pair[0].start_byte, -pair[0].end_byte),
    )
    edits: list[Edit] = []
    end = 0
    for node, kind in found:
        if node.start_byte < end or not node.named_children:  # inside a dropped body, or empty: nothing to drop
            continue
        if _declares(node, language):
            continue
        edit = _edit(node, kind, language, source)
        if edit is not None:
            edits.append((edit[0] + offset, edit[1] + offset, edit[2]))
            end = edit[1]
    return edits


_PYTHON_DEFINITIONS = frozenset({"function_definition", "class_definition", "decorated_definition"})
_JS_DEFINITIONS = frozenset(
    {
        "function_declaration",
        "generator_function_declaration",
        "class_declaration",
        "abstract_class_declaration",
        "function_expression",
        "function",
        "generator_function",
        "class",
        "method_definition",
    }
)
# What a statement may wrap a function or class in and still define it: ``var f = …``, ``exports.f = …``,
# ``return class …``, ``{ f: …, g() {…} }``, ``(function () {…}).call(this)``.
_JS_WRAPPERS = frozenset(
    {
        "lexical_declaration",
        "variable_declaration",
        "variable_declarator",
        "expression_statement",
        "return_statement",
        "assignment_expression",
        "call_expression",
        "parenthesized_expression",
        "member_expression",
        "object",
        "pair",
    }
)


def _declares(body: Node, language: str) -> bool:
    """Whether ``body`` is a module in all but name: one of its own statements defines a function or class, or (the
    shape of ``describe``, ``$(function () {…})``) half its statements or more are calls given a callback."""
    statements = body.named_children
    if language == "python":
        return body.type == "block" and any(child.type in _PYTHON_DEFINITIONS for child in statements)
    if language not in ("javascript", "typescript", "tsx") or body.type != "statement_block":
        return False
    if any(_js_defines(statement) for statement in statements):
        return True
    return 2 * sum(_js_registers(statement) for statement in statements) >= len(statements)


def _js_defines(node: Node) -> bool:
    if node.type in _JS_DEFINITIONS:
        return True
    if node.type == "arrow_function":  # a one-line arrow function is kept whole anyway
        return node.end_point.row > node.start_point.row
    return node.type in _JS_WRAPPERS and any(_js_defines(child) for child in node.named_children)


def _js_registers(statement: Node) -> bool:
    """Whether ``statement`` is a call (awaited or not) handed a multi-line function: ``it("…", () => {…})``."""
    call = statement.named_children[0] if statement.type == "expression_statement" else None
    if call is not None and call.type == "await_expression":
        call = call.named_children[0]
    arguments = call.child_by_field_name("arguments") if call is not None and call.type == "call_expression" else None
    return arguments is not None and any(_js_defines(argument) for argument in arguments.named_children)


def _edit(node: Node, kind: str, language: str, source: bytes) -> Edit | None:
    start, end = node.start_byte, node.end_byte
    if kind == "block":
        return start, end, BLOCK
    if kind == "expression":
        # A one-line expression body is its signature's worth; one in braces, or spanning lines, is a body.
        multi_line = node.end_point.row > node.start_point.row
        return (start, end, BLOCK) if multi_line or node.children[0].type == "{" else None
    if kind == "inner":
        return start, end, INNER.get(language, "/* … */")
    if kind == "declarations":
        nested = any(child.type not in ("declaration", "comment") for child in node.named_children)
        return None if nested else (start, end, BLOCK)
    return _python_body(node, source)  # the one capture left: @python


def _python_body(block: Node, source: bytes) -> Edit | None:
    """A Python body becomes ``...``, after its docstring when it has one, indented as the docstring is (tabs stay
    tabs) or, after a docstring on the ``def`` line, on that line."""
    first = block.named_children[0]
    if first.type == "expression_statement" and first.named_child_count == 1:
        first = first.named_children[0]
    if first.type != "string":
        return block.start_byte, block.end_byte, "..."
    if len(block.named_children) == 1:
        return None  # only a docstring: nothing to drop
    indent = source[source.rfind(b"\n", 0, first.start_byte) + 1 : first.start_byte]
    if indent.strip():
        return first.end_byte, block.end_byte, "; ..."
    return first.end_byte, block.end_byte, "\n" + indent.decode() + "..."


def _vue_edits(source: bytes) -> list[Edit]:
    """A Vue file's ``<script>`` blocks compressed as JavaScript or TypeScript (by ``lang``) and its plain CSS
    ``<style>`` blocks as CSS; the template is the component's markup and stays whole."""
    root = _parse(source, "vue")
    edits: list[Edit] = []
    for element in root.named_children:
        if element.type not in ("script_element", "style_element"):
            continue
        start_tag = element.named_children[0]
        raw = next((c for c in element.named_children if c.type == "raw_text"), None)
        if raw is None:  # an empty block
            continue
        lang = _LANG.search(source[start_tag.start_byte : start_tag.end_byte].decode())
        name = lang.group(1) if lang else ""
        inner = _VUE_SCRIPTS.get(name) if element.type == "script_element" else ("css" if name in ("", "css") else None)
        if inner is None:
            continue
        block = source[raw.start_byte : raw.end_byte]
        where = f", in the <{element.type.split('_')[0]}> block"
        edits += _edits(block, inner, raw.start_byte, raw.start_point.row, where)
    return edits


def _apply(source: bytes, edits: list[Edit]) -> Compressed:
    """``source`` with each edit made, and the original line each line of the result starts on."""
    pieces: list[str] = []
    lines = [1]
    row, pos = 1, 0
    for start, end, replacement in edits:
        kept = source[pos:start]
        pieces += [kept.decode(), replacement]
        breaks = kept.count(b"\n")
        lines += range(row + 1, row + breaks + 1)
        row += breaks
        lines += [row + 1] * replacement.count("\n")
        row += source.count(b"\n", start, end)
        pos = end
    tail = source[pos:]
    pieces.append(tail.decode())
    lines += range(row + 1, row + tail.count(b"\n") + 1)
    return Compressed("".join(pieces), tuple(lines))
