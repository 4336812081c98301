"""The static layer (AST policy) and plain-data conversion, tested in-process without sandbox workers."""

import ast

import numpy as np
import pytest

from valor_lib.programs.plain_data import DataLimits, PlainDataError, call_repr, to_plain
from valor_lib.programs.policy import attribute_problem, check_program, top_level_yield


def problems(code: str) -> list[str]:
    return check_program(ast.parse(code))


@pytest.mark.parametrize(
    "code",
    [
        "import math\nimport numpy as np\nfrom numpy.linalg import norm\nfrom math import sqrt, pi",
        "import numpy.linalg\nx = numpy.linalg.norm([1, 2])",
        "boxes = gd_detect(image, 'cup')\nfinal_answer = sorted(boxes, key=lambda b: b['bbox'][0])",
        "type = 'chair'\nfinal_answer = type",  # a blocked name used as the program's own variable
        "def dir(v):\n    return v\nfinal_answer = dir(1)",
        "final_answer = '{:.2f} m'.format(1.234) + '{0[0]}'.format([1])",
        "final_answer = f'{image.width:>5}'",
        "class Box:\n    def __init__(self, b):\n        self.b = b\nfinal_answer = Box([1]).b",
        "x = np.zeros((2, 2))\nx.shape = (4,)\nfinal_answer = getattr(image, 'width')",
        "_private_variable = 1\nfinal_answer = _private_variable",
        "match image.size:\n    case (w, h):\n        final_answer = w",
    ],
)
def test_ordinary_programs_pass(code):
    assert problems(code) == []


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("import os", "import of 'os'"),
        ("import numpy.ctypeslib", "import of 'numpy.ctypeslib'"),
        ("from os import path", "import from 'os'"),
        ("from . import x", "import from None"),
        ("from numpy import save", "'save'"),
        ("from numpy import *", "star imports"),
        ("import math as __builtins__", "reserved"),
        ("x = __builtins__", "reserved"),
        ("x = __import__('os')", "reserved"),
        ("x = ().__class__.__base__.__subclasses__()", "'__class__'"),
        ("x = gd_detect.__globals__", "'__globals__'"),
        ("g = (i for i in [1])\nx = g.gi_frame", "'gi_frame'"),
        ("x = e.tb_frame.f_back", "'tb_frame'"),
        ("x = f.co_code", "'co_code'"),
        ("x = image._width", "'_width'"),
        ("x = open('/etc/passwd')", "'open'"),
        ("exec('1')", "'exec'"),
        ("eval('1')", "'eval'"),
        ("compile('1', 'f', 'exec')", "'compile'"),
        ("x = globals()", "'globals'"),
        ("x = type(image)", "'type'"),
        ("raise SystemExit", "'SystemExit'"),
        ("x = getattr(image, '__class__')", "'__class__'"),
        ("x = hasattr(np, 'lib')", "'lib'"),
        ("np.save('x.npy', x)", "'save'"),
        ("x.tofile('x.bin')", "'tofile'"),
        ("x = np.zeros(3).ctypes", "'ctypes'"),
        ("x = np.lib.stride_tricks.as_strided", "'lib'"),
        ("x = np.loadtxt('/etc/passwd')", "'loadtxt'"),
        ("x = '{0.__class__}'.format(1)", "looks up an attribute"),
        ("x = '{0:{1.real}}'.format(1, 2)", "looks up an attribute"),
        ("fmt = '{}'\nx = fmt.format(1)", "'format'"),
        ("x = str.format('{}', 1)", "'format'"),
        ("x = '{a}'.format_map({'a': 1})", "'format_map'"),
        ("x = f'{image.__class__}'", "'__class__'"),
        ("match image:\n    case object(__class__=c):\n        pass", "'__class__'"),
        ("a = np.zeros(3)\na.strides = (0,)", "assigning attribute 'strides'"),
        ("global __builtins__", "reserved"),
    ],
)
def test_forbidden_constructs_are_reported_with_line_and_reason(code, reason):
    found = problems(code)
    assert found and any(reason in p for p in found), found
    assert all(p.startswith("line ") for p in found)


def test_attribute_rule_is_shared_by_static_and_runtime_checks():
    assert attribute_problem("width") is None
    assert attribute_problem("__class__") and attribute_problem("f_globals") and attribute_problem("tofile")


def test_yield_in_program_body_is_found_but_not_in_nested_functions():
    assert top_level_yield(ast.parse("if True:\n    yield 1")) is not None
    assert top_level_yield(ast.parse("def g():\n    yield 1\nfinal_answer = list(g())")) is None


def test_plain_data_conversion():
    value = {"a": np.float64(2.5), "b": np.array([[1, 2]]), "c": (1, np.bool_(True), None), "d": np.str_("x")}
    converted = to_plain(value)
    assert converted == {"a": 2.5, "b": [[1, 2]], "c": [1, True, None], "d": "x"}
    assert type(converted["a"]) is float and type(converted["c"][1]) is bool and type(converted["d"]) is str


class _Crafted:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize(
    ("value", "too_large"),
    [
        (_Crafted(), False),
        (type("S", (str,), {})("yes"), False),
        ({1: "a"}, False),
        ({1, 2}, False),
        (b"bytes", False),
        (print, False),
        ("x" * 2000, True),
        (list(range(5000)), True),
        (10**400, True),
        (np.zeros(10**6), True),
    ],
)
def test_plain_data_rejects_crafted_and_oversized_values(value, too_large):
    with pytest.raises(PlainDataError) as info:
        to_plain(value, DataLimits(max_depth=4, max_items=1000, max_chars=1000))
    assert info.value.too_large is too_large


def test_plain_data_depth_limit():
    nested: list = []
    for _ in range(100):
        nested = [nested]
    with pytest.raises(PlainDataError, match="nested deeper"):
        to_plain(nested)


def test_call_repr_is_bounded_and_never_calls_user_code():
    class Loud:
        def __repr__(self):
            raise AssertionError("user code ran")

    image = object()
    text = call_repr((image, "x" * 1000, [Loud()] * 20), {"k": np.zeros((3, 4))}, image=image)
    assert text.startswith("image, 'xxx") and len(text) <= 200
