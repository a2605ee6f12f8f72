"""Label selectors: string syntax, LabelSelector conversion, matching and upstream errors."""

from __future__ import annotations

import pytest

from k3py.apimachinery import selectors
from k3py.apimachinery.selectors import Selector, SelectorError, parse
from k3py.server.errors import APIError


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("a=b", "a=b"),
        ("a==b", "a==b"),
        ("a!=b", "a!=b"),
        ("a in (x,y)", "a in (x,y)"),
        ("a notin (y,x)", "a notin (x,y)"),
        ("a", "a"),
        ("!a", "!a"),
        ("b=1,a=2", "a=2,b=1"),
        ("  env  in  ( prod , dev ) , !tier ", "env in (dev,prod),!tier"),
        ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
        ("value in (in)", "value in (in)"),
        ("a=", "a="),
        ("n>3,m<4", "m<4,n>3"),
        ("example.com/role=db", "example.com/role=db"),
        ("", ""),
    ],
)
def test_parse_and_print(text: str, canonical: str) -> None:
    assert str(parse(text)) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'"),
        ("a in x", "unable to parse requirement: found 'x' expected: '('"),
        (
            "a>x",
            'unable to parse requirement: values[0]: Invalid value: "x": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse(text)
    assert str(info.value) == message
    assert info.value.code == 400 and info.value.reason == "BadRequest"


def test_invalid_key_and_value_are_reported_like_upstream() -> None:
    with pytest.raises(APIError) as info:
        parse("a/b/c=x")
    assert info.value.message.startswith(
        'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name'
    )
    with pytest.raises(APIError) as info:
        parse("app=a%b")
    assert info.value.message.startswith(
        'unable to parse requirement: values[0][app]: Invalid value: "a%b": a valid label'
    )


def test_matching() -> None:
    sel = parse("app=web,tier notin (db),!canary,env in (a,b),n>2")
    assert sel.matches({"app": "web", "env": "a", "n": "3"})
    assert not sel.matches({"app": "web", "env": "c", "n": "3"})
    assert not sel.matches({"app": "web", "env": "a", "n": "2"})
    assert not sel.matches({"app": "web", "env": "a", "n": "x"})
    assert not sel.matches({"app": "web", "env": "a", "n": "3", "canary": ""})
    assert not sel.matches({"app": "web", "env": "a", "n": "3", "tier": "db"})
    assert sel.matches({"app": "web", "env": "b", "n": "30", "tier": "fe"})
    assert parse("a!=b").matches({})
    assert not parse("a=b").matches(None)
    assert parse("a").matches({"a": ""})


def test_empty_and_nothing() -> None:
    assert parse("").empty and parse("").matches({"x": "y"})
    assert not parse("a").empty
    nothing = Selector.match_nothing()
    assert not nothing.empty and not nothing.matches({})
    assert selectors.parse_selector(None).empty


def test_requires_exact_match() -> None:
    assert parse("a=b,c in (d)").requires_exact_match("c") == "d"
    assert parse("a in (b,c)").requires_exact_match("a") is None
    assert parse("a!=b").requires_exact_match("a") is None


def test_label_selector_conversion() -> None:
    sel = selectors.from_label_selector(
        {
            "matchLabels": {"app": "x"},
            "matchExpressions": [{"key": "k", "operator": "In", "values": ["b", "a"]}],
        }
    )
    assert str(sel) == "app=x,k in (a,b)"
    assert sel.matches({"app": "x", "k": "a"}) and not sel.matches({"app": "x"})
    assert selectors.from_label_selector({}).empty
    assert not selectors.from_label_selector(None).matches({})
    exists = selectors.from_label_selector(
        {
            "matchExpressions": [
                {"key": "a", "operator": "Exists"},
                {"key": "b", "operator": "DoesNotExist"},
            ]
        }
    )
    assert exists.matches({"a": "1"}) and not exists.matches({"a": "1", "b": "2"})


def test_label_selector_errors() -> None:
    with pytest.raises(SelectorError, match='"Foo" is not a valid label selector operator'):
        selectors.from_label_selector({"matchExpressions": [{"key": "k", "operator": "Foo"}]})
    with pytest.raises(SelectorError) as info:
        selectors.from_label_selector(
            {"matchExpressions": [{"key": "k", "operator": "In", "values": []}]}
        )
    assert (
        str(info.value)
        == "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
    )


def test_validate_label_selector_causes() -> None:
    causes = selectors.validate_label_selector(
        {
            "matchLabels": {"ok": "bad value"},
            "matchExpressions": [
                {"key": "k", "operator": "In"},
                {"key": "k", "operator": "Exists", "values": ["x"]},
                {"key": "k", "operator": "Nope"},
            ],
        },
        path="spec.selector",
    )
    fields = [(c["reason"], c["field"]) for c in causes]
    assert fields == [
        ("FieldValueInvalid", "spec.selector.matchLabels"),
        ("FieldValueRequired", "spec.selector.matchExpressions[0].values"),
        ("FieldValueForbidden", "spec.selector.matchExpressions[1].values"),
        ("FieldValueInvalid", "spec.selector.matchExpressions[2].operator"),
    ]
    assert causes[3]["message"] == 'Invalid value: "Nope": not a valid selector operator'
