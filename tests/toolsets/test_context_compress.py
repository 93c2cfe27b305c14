"""pack_codebase(compress=True): every language Repomix compresses, cut to its skeleton by tree-sitter, checked on
real source (what is kept, what is dropped, and that the skeleton still parses); files that do not parse sent
whole and listed; the counts exact on the text the client received; and ``tandem pack --compress``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client
from tree_sitter_language_pack import get_parser

from tandem.toolsets.context.compress import compress_files, language_for
from tests.exact_tokens import tiktoken_count
from tests.toolsets.calls import git, serving

pytestmark = pytest.mark.anyio

# Each sample: its source, what the skeleton must keep (imports, headers, signatures, types, docstrings) and a body
# statement it must drop.
SAMPLES: dict[str, tuple[str, list[str], list[str]]] = {
    "geometry.c": (
        """#include <stdio.h>

/* A point. */
struct point { int x; int y; };

typedef int (*handler)(int);

/** Adds two numbers. */
static int add(int a, int b) {
    int sum = a + b;
    return sum;
}
""",
        [
            "#include <stdio.h>",
            "struct point { int x; int y; };",
            "/** Adds two numbers. */",
            "static int add(int a, int b) { /* … */ }",
        ],
        ["int sum = a + b;"],
    ),
    "shapes.cpp": (
        """#include <vector>

namespace geo {
/// A shape.
class Shape {
 public:
  virtual double area() const = 0;
  int sides() const { return count_ * 2; }
 private:
  int count_;
};

template <typename T>
T twice(T v) {
  auto f = [](T x) { return x + x; };
  return f(v);
}
}
""",
        ["#include <vector>", "/// A shape.", "virtual double area() const = 0;", "int sides() const { /* … */ }"],
        ["return count_ * 2;", "auto f = "],
    ),
    "Greeter.cs": (
        """using System;

namespace Demo
{
    /// <summary>A greeter.</summary>
    public class Greeter : IGreeter
    {
        public string Name { get; set; }

        /// <summary>Says hello.</summary>
        public string Greet(string other)
        {
            var message = "hi " + other;
            return message;
        }

        public Greeter() { Name = "x"; }
    }
}
""",
        ["using System;", "/// <summary>Says hello.</summary>", "public string Greet(string other)", "{ get; set; }"],
        ['var message = "hi " + other;', 'Name = "x";'],
    ),
    "site.css": (
        """@import url("base.css");

/* Buttons. */
.button, a.link:hover {
  color: red;
  padding: 4px;
}

@media (max-width: 600px) {
  .button { display: none; }
}
""",
        [
            '@import url("base.css");',
            ".button, a.link:hover { /* … */ }",
            "@media (max-width: 600px) {\n  .button { /* … */ }",
        ],
        ["color: red;", "display: none;"],
    ),
    "point.dart": (
        """import 'dart:math';

/// A point.
class Point {
  final int x;
  Point(this.x);

  /// The norm.
  double norm() {
    final squared = x * x;
    return sqrt(squared);
  }
}
""",
        ["import 'dart:math';", "/// The norm.", "double norm() { /* … */ }", "final int x;"],
        ["final squared = x * x;"],
    ),
    "point.go": (
        """package main

import "fmt"

// Point is a point.
type Point struct{ X, Y int }

// Norm returns the norm.
func (p Point) Norm() int {
	total := p.X*p.X + p.Y*p.Y
	return total
}
""",
        [
            'import "fmt"',
            "type Point struct{ X, Y int }",
            "// Norm returns the norm.",
            "func (p Point) Norm() int { /* … */ }",
        ],
        ["total := p.X*p.X"],
    ),
    "Greeter.java": (
        """package demo;

import java.util.List;

/** A greeter. */
public class Greeter implements Named {
    private final String name;

    /** Says hello. */
    public String greet(String other) {
        String message = "hi " + other;
        return message;
    }
}
""",
        [
            "import java.util.List;",
            "private final String name;",
            "/** Says hello. */",
            "public String greet(String other) { /* … */ }",
        ],
        ['String message = "hi " + other;'],
    ),
    "square.js": (
        """import { readFile } from "fs";

/** A square. */
export class Square {
  /** The area. */
  area() {
    const squared = this.side * this.side;
    return squared;
  }
}

export const load = (path) => {
  return readFile(path);
};
const twice = (x) => x * 2;
""",
        [
            'import { readFile } from "fs";',
            "/** The area. */",
            "area() { /* … */ }",
            "export const load = (path) => { /* … */ };",
        ],
        ["const squared", "return readFile(path);"],
    ),
    "Point.kt": (
        """package demo

import kotlin.math.sqrt

/** A point. */
data class Point(val x: Int) {
    /** The norm. */
    fun norm(): Double {
        val squared = x * x
        return sqrt(squared.toDouble())
    }
    init { check(x >= 0) }
}

fun twice(v: Int) = v * 2
""",
        ["import kotlin.math.sqrt", "/** The norm. */", "fun norm(): Double { /* … */ }", "fun twice(v: Int) = v * 2"],
        ["val squared = x * x", "check(x >= 0)"],
    ),
    "Greeter.php": (
        """<?php
namespace App;

use App\\Models\\User;

/** A greeter. */
class Greeter extends Base
{
    private string $name;

    /** Says hello. */
    public function greet(string $other): string
    {
        $message = "hi " . $other;
        return $message;
    }
}
""",
        [
            "use App\\Models\\User;",
            "/** Says hello. */",
            "public function greet(string $other): string",
            "private string $name;",
        ],
        ['$message = "hi " . $other;'],
    ),
    "greeter.py": (
        '''"""A module."""
import os


class Greeter:
    """Greets people."""

    name: str = "x"

    def greet(self, other: str) -> str:
        """Says hello."""
        message = f"hi {other}"
        return message


def main() -> None:
    print(os.getcwd())
''',
        [
            "import os",
            '"""Greets people."""',
            'def greet(self, other: str) -> str:\n        """Says hello."""\n        ...',
            "def main() -> None:\n    ...",
        ],
        ['message = f"hi {other}"', "print(os.getcwd())"],
    ),
    "greeter.rb": (
        """require 'json'

# A greeter.
class Greeter < Base
  attr_reader :name

  # Says hello.
  def greet(other, loud: false)
    message = "hi #{other}"
    puts message
  end
end
""",
        ["require 'json'", "attr_reader :name", "# Says hello.", "def greet(other, loud: false)\n    # …\n  end"],
        ["puts message"],
    ),
    "point.rs": (
        """use std::fmt;

/// A point.
pub struct Point { x: i32 }

impl Point {
    /// Makes one.
    pub fn new(x: i32) -> Self {
        let doubled = x * 2;
        Point { x: doubled }
    }
}
""",
        ["use std::fmt;", "pub struct Point { x: i32 }", "/// Makes one.", "pub fn new(x: i32) -> Self { /* … */ }"],
        ["let doubled = x * 2;"],
    ),
    "Counter.sol": (
        """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;

import "./Base.sol";

/// @title A counter.
contract Counter is Base {
    uint256 public count;
    event Bumped(uint256 by);

    /// @notice Bumps it.
    function bump(uint256 by) public returns (uint256) {
        count += by;
        emit Bumped(by);
        return count;
    }
}
""",
        [
            'import "./Base.sol";',
            "event Bumped(uint256 by);",
            "/// @notice Bumps it.",
            "function bump(uint256 by) public returns (uint256) { /* … */ }",
        ],
        ["emit Bumped(by);"],
    ),
    "Square.swift": (
        """import Foundation

/// A shape.
protocol Shape { func area() -> Double }

struct Square: Shape {
    let side: Double
    /// The area.
    func area() -> Double {
        let squared = side * side
        return squared
    }
}
""",
        [
            "import Foundation",
            "protocol Shape { func area() -> Double }",
            "/// The area.",
            "func area() -> Double { /* … */ }",
        ],
        ["let squared = side * side"],
    ),
    "square.ts": (
        """import { readFile } from "fs";

/** A shape. */
export interface Shape { area(): number }
type Id = string | number;

export class Square implements Shape {
  constructor(private side: number) { this.check(); }
  /** The area. */
  area(): number {
    const squared = this.side * this.side;
    return squared;
  }
}
""",
        [
            "export interface Shape { area(): number }",
            "type Id = string | number;",
            "/** The area. */",
            "area(): number { /* … */ }",
        ],
        ["const squared", "this.check();"],
    ),
    "View.tsx": (
        """import React from "react";

type Props = { name: string };

/** Greets by name. */
export function Greeting({ name }: Props): JSX.Element {
  const shown = name.toUpperCase();
  return <h1>Hello {shown}</h1>;
}

export const Card = ({ name }: Props) => (
  <div className="card">{name}</div>
);
""",
        [
            "type Props = { name: string };",
            "/** Greets by name. */",
            "export function Greeting({ name }: Props): JSX.Element { /* … */ }",
            "export const Card = ({ name }: Props) => { /* … */ };",
        ],
        ["const shown", 'className="card"'],
    ),
    "Counter.vue": (
        """<template>
  <button @click="bump">{{ count }}</button>
</template>

<script setup lang="ts">
import { ref } from "vue";

/** Bumps the count. */
function bump(): void {
  count.value += 1;
}
</script>

<style scoped>
button { color: red; }
</style>
""",
        [
            '<button @click="bump">{{ count }}</button>',
            'import { ref } from "vue";',
            "/** Bumps the count. */\nfunction bump(): void { /* … */ }",
            "button { /* … */ }",
        ],
        ["count.value += 1;", "color: red;"],
    ),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_language_keeps_its_skeleton_and_drops_bodies(name: str) -> None:
    source, kept, dropped = SAMPLES[name]
    language = language_for(name)
    assert language is not None, f"{name} is not compressed"
    [result] = compress_files([(source, language)])
    assert not isinstance(result, str), result
    for text in kept:
        assert text in result.text, f"{name} lost {text!r}:\n{result.text}"
    for text in dropped:
        assert text in source and text not in result.text, f"{name} kept {text!r}"
    assert len(result.text) < len(source)
    if language != "vue":  # the skeleton is still valid source (bodies became comments, ``...`` or ``# …``)
        assert not get_parser(language).parse(result.text.encode()).root_node.has_error, result.text


def test_the_listed_languages_are_all_covered() -> None:
    languages = {language_for(name) for name in SAMPLES}
    repomix = {"c", "cpp", "csharp", "css", "dart", "go", "java", "javascript", "php", "python", "ruby", "rust"}
    assert languages == repomix | {"solidity", "swift", "typescript", "tsx", "vue", "kotlin"}


def test_a_body_that_defines_nothing_goes_whole_and_empty_bodies_stay() -> None:
    stub = 'def stub():\n    """Only a docstring."""\n'
    source = "def outer(items):\n    for item in items:\n        print(lambda: item)\n    return items\n\n\n" + stub
    [result] = compress_files([(source, "python")])
    assert not isinstance(result, str)
    assert result.text == "def outer(items):\n    ...\n\n\n" + stub
    [js] = compress_files([("function f() {}\nconst g = () => { return h(() => { deep(); }); };\n", "javascript")])
    assert not isinstance(js, str)
    assert js.text == "function f() {}\nconst g = () => { /* … */ };\n"


def test_a_body_that_defines_functions_or_classes_keeps_them_and_cuts_their_bodies() -> None:
    source = (
        "def outer():\n    def inner():\n        return 1\n    return inner\n\n\n"
        "def make_models(base):\n"
        '    """Classes made per base."""\n'
        "    class User(base):\n        def name(self) -> str:\n            return self.first + self.last\n"
        "    return User\n"
    )
    [result] = compress_files([(source, "python")])
    assert not isinstance(result, str)
    assert result.text == (
        "def outer():\n    def inner():\n        ...\n    return inner\n\n\n"
        "def make_models(base):\n"
        '    """Classes made per base."""\n'
        "    class User(base):\n        def name(self) -> str:\n            ...\n"
        "    return User\n"
    )
    compile(result.text, "skeleton.py", "exec")


# A library as bundlers ship it (UMD around a factory), an AMD module, a CommonJS plugin factory, an IIFE and a test
# file: every one keeps its code inside one function, so dropping that body whole would leave nothing.
WRAPPED_JS = """(function (global, factory) {
  typeof exports === 'object' ? factory(exports) : factory((global.lib = {}));
})(this, (function (exports) { 'use strict';
  var VERSION = "1.0.0";
  function parse(input, options) {
    return new Parser(options, input).parse();
  }
  var Parser = function Parser(options, input) {
    this.options = options;
    this.input = String(input);
  };
  Parser.prototype.parse = function parse () {
    return this.parseTopLevel(this.startNode());
  };
  exports.parse = parse;
}));

define(["dep"], function (dep) {
  return {
    render: function (view) {
      return dep.draw(view);
    },
  };
});

module.exports = function plugin(options) {
  return class extends options.Base {
    readToken(code) {
      return super.readToken(code + 1);
    }
  };
};

(function () {
  function helper(value) {
    return value * 2;
  }
  window.helper = helper;
})();

describe("parse", () => {
  beforeEach(() => {
    reset();
  });
  it("reads a number", () => {
    expect(parse("1")).toBe(1);
  });
});
"""


def test_code_wrapped_in_a_function_keeps_its_structure_and_loses_only_the_inner_bodies() -> None:
    [result] = compress_files([(WRAPPED_JS, "javascript")])
    assert not isinstance(result, str), result
    for kept in (
        "(function (global, factory) { /* … */ })(this, (function (exports) { 'use strict';",
        'var VERSION = "1.0.0";',
        "function parse(input, options) { /* … */ }",
        "var Parser = function Parser(options, input) { /* … */ };",
        "Parser.prototype.parse = function parse () { /* … */ };",
        "exports.parse = parse;",
        "render: function (view) { /* … */ },",
        "readToken(code) { /* … */ }",
        "function helper(value) { /* … */ }\n  window.helper = helper;",
        'beforeEach(() => { /* … */ });\n  it("reads a number", () => { /* … */ });',
    ):
        assert kept in result.text, f"lost {kept!r}:\n{result.text}"
    for dropped in ("this.options = options", "dep.draw(view)", "super.readToken", "value * 2", "toBe(1)", "reset()"):
        assert dropped not in result.text, dropped
    assert not get_parser("javascript").parse(result.text.encode()).root_node.has_error, result.text


ACORN = Path(__file__).resolve().parents[2] / ".tools/node_modules/acorn/dist/acorn.js"


@pytest.mark.skipif(
    not ACORN.is_file(), reason="acorn is not installed (.tools/node_modules): run 'bash scripts/node-tools'"
)
def test_a_real_umd_library_keeps_its_functions_signatures() -> None:
    source = ACORN.read_text()
    [result] = compress_files([(source, "javascript")])
    assert not isinstance(result, str), result
    assert 10_000 < len(result.text) < len(source) / 2
    for signature in (
        "function getLineInfo(input, offset) { /* … */ }",
        "var Parser = function Parser(options, input, startPos) { /* … */ };",
    ):
        assert signature in result.text
    assert not get_parser("javascript").parse(result.text.encode()).root_node.has_error


def test_a_tab_indented_python_skeleton_still_compiles() -> None:
    source = 'class A:\n\tdef f(self):\n\t\t"""Doc."""\n\t\treturn 1\n\n\ndef g(): """Doc."""; return 2\n'
    [result] = compress_files([(source, "python")])
    assert not isinstance(result, str)
    assert result.text == 'class A:\n\tdef f(self):\n\t\t"""Doc."""\n\t\t...\n\n\ndef g(): """Doc."""; ...\n'
    compile(result.text, "skeleton.py", "exec")


def test_a_c_plus_plus_header_named_h_is_compressed_as_c_plus_plus() -> None:
    [result] = compress_files([("class A {\n public:\n  int f() { return 1; }\n};\n", "c")])
    assert not isinstance(result, str) and "int f() { /* … */ }" in result.text


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    for name, (source, _, _) in SAMPLES.items():
        (root / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "src" / name).write_text(source)
    (root / "README.md").write_text("# Demo\n\nNot source: sent whole.\n")
    (root / "src" / "broken.py").write_text("def ok():\n    return 1\n\n\ndef broken(:\n    return 2\n")
    (root / "src" / "Broken.vue").write_text("<template><p/></template>\n<script>\nfunction f( {\n</script>\n")
    git(root.parent, "init", "-q", str(root))
    return root


async def pack(client: Client, **arguments: object) -> tuple[dict, str, str]:
    result = await client.call_tool("pack_codebase", arguments)
    assert not result.is_error, result.content[0].text
    summary, output = (block.text for block in result.content)
    return result.structured_content, summary, output


async def test_a_compressed_pack_is_smaller_counted_exactly_and_lists_what_fell_back(workspace: Path) -> None:
    async with serving(workspace, toolsets=["context"]) as client:
        whole, _, whole_output = await pack(client, style="json")
        stats, summary, output = await pack(client, style="json", compress=True)
    files = json.loads(output)["files"]
    assert stats["total_tokens"] == tiktoken_count(output) and stats["total_chars"] == len(output)
    assert stats["total_tokens"] < whole["total_tokens"] == tiktoken_count(whole_output)
    assert stats["file_tokens"] == sum(tiktoken_count(text) for text in files.values())
    # Every sample came back as its skeleton; what is not source, or does not parse, came back byte for byte.
    for name, (_, kept, dropped) in SAMPLES.items():
        assert all(text in files[f"src/{name}"] for text in kept) and dropped[0] not in files[f"src/{name}"], name
    assert files["README.md"] == (workspace / "README.md").read_text()
    for broken in ("src/broken.py", "src/Broken.vue"):
        assert files[broken] == (workspace / broken).read_text()
    assert stats["compressed"] == {
        "files": len(SAMPLES),
        "fell_back": [
            {"path": "src/Broken.vue", "reason": "does not parse as javascript (line 3, in the <script> block)"},
            {"path": "src/broken.py", "reason": "does not parse as python (line 5)"},
        ],
    }
    assert f"; {len(SAMPLES)} files compressed (2 sent whole: tree-sitter found syntax errors)" in summary
    assert "compressed" not in whole and "each function body is dropped" in output


async def test_line_numbers_of_a_compressed_file_are_those_of_the_real_file(workspace: Path) -> None:
    async with serving(workspace, toolsets=["context"]) as client:
        _, _, output = await pack(client, include=["greeter.py"], compress=True, line_numbers=True)
    shown = output.split('<file path="src/greeter.py">\n', 1)[1].split("\n</file>", 1)[0]
    # The body's first statement was line 12 and it ran to line 13: the next line shown is 14.
    assert shown.splitlines()[7:13] == [
        ' 8:     name: str = "x"',
        " 9: ",
        "10:     def greet(self, other: str) -> str:",
        '11:         """Says hello."""',
        "12:         ...",
        "14: ",
    ]
    assert shown.splitlines()[-2:] == ["16: def main() -> None:", "17:     ..."]


async def test_many_files_are_compressed_in_worker_processes(tmp_path: Path) -> None:
    # More than two batches of files: the compression is spread over the worker processes (given two CPUs or more).
    root = tmp_path / "many"
    for n in range(520):
        (root / f"pkg{n // 100}").mkdir(parents=True, exist_ok=True)
        (root / f"pkg{n // 100}" / f"m{n}.py").write_text(f"def f{n}(x: int) -> int:\n    return x * {n}\n")
    async with serving(root, toolsets=["context"]) as client:
        stats, _, output = await pack(client, compress=True, leave_out_secrets=False)
    assert stats["compressed"] == {"files": 520, "fell_back": []}
    assert "def f519(x: int) -> int:\n    ...\n</file>" in output and "return x * 519" not in output
    assert stats["total_tokens"] == tiktoken_count(output)


async def test_a_minified_file_is_sent_whole_and_listed(tmp_path: Path) -> None:
    root = tmp_path / "web"
    root.mkdir()
    minified = "".join(f"function f{n}(a){{return a+{n}}}" for n in range(400)) + "\n"
    (root / "app.js").write_text(minified)
    (root / "long.js").write_text("var ok = 1;\n" * 50 + f"var data = {json.dumps(['x' * 50] * 120)};\n")
    (root / "main.js").write_text("function main(a) {\n  return a + 1;\n}\n")
    async with serving(root, toolsets=["context"]) as client:
        stats, summary, output = await pack(client, style="json", compress=True, leave_out_secrets=False)
    files = json.loads(output)["files"]
    assert files["app.js"] == minified and files["long.js"] == (root / "long.js").read_text()
    assert files["main.js"] == "function main(a) { /* … */ }\n"
    assert stats["compressed"] == {
        "files": 1,
        "fell_back": [{"path": "app.js", "reason": "minified"}, {"path": "long.js", "reason": "minified"}],
    }
    assert "; 1 files compressed (2 sent whole: minified)" in summary


def test_tandem_pack_compress_on_the_command_line(workspace: Path, tmp_path: Path) -> None:
    def tandem(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "tandem", "pack", *args, "--workspace", str(workspace)],
            cwd=workspace,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    printed = tandem("--compress", "--no-secret-scan", "-o", str(tmp_path / "small.xml"))
    tandem("--no-secret-scan", "-o", str(tmp_path / "whole.xml"))
    small, whole = (tmp_path / "small.xml").read_text(), (tmp_path / "whole.xml").read_text()
    assert f"{len(SAMPLES)} files compressed (2 sent whole" in printed
    assert "public String greet(String other) { /* … */ }" in small and 'String message = "hi "' not in small
    assert 'String message = "hi "' in whole
    assert tiktoken_count(small) < tiktoken_count(whole)
    assert f"{tiktoken_count(small):,} tokens (o200k_base)" in printed  # the count is of the file written
