"""CRD schemas: structural rules, pruning, defaulting, validation of custom objects, CRD checks."""

from __future__ import annotations

import copy
from typing import Any

from k3py.server.registry import structural as st

CRON = r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"


def crontab_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "cronSpec": {"type": "string", "pattern": CRON},
                    "image": {"type": "string"},
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                    "schedule": {
                        "type": "object",
                        "properties": {"zone": {"type": "string", "default": "UTC"}},
                    },
                },
                "required": ["cronSpec"],
            },
            "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
        },
    }


def crontab_crd(**spec_changes: Any) -> dict[str, Any]:
    crd: dict[str, Any] = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "scope": "Namespaced",
            "names": {
                "plural": "crontabs",
                "singular": "crontab",
                "kind": "CronTab",
                "shortNames": ["ct"],
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": crontab_schema()},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                        },
                    },
                    "additionalPrinterColumns": [
                        {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"}
                    ],
                }
            ],
        },
    }
    crd["spec"].update(spec_changes)
    return crd


def rendered(causes: list[Any]) -> list[str]:
    return [st.render(c) for c in causes]


def v3(crd: dict[str, Any], i: int = 0) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][i]["schema"]["openAPIV3Schema"]
    return schema


# ---- pruning -----------------------------------------------------------------------------------------


def test_prune_drops_unknown_fields_and_reports_sorted_paths() -> None:
    obj = {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "x", "foo": 1, "labels": {"a": "b"}},
        "spec": {
            "cronSpec": "* * * * */5",
            "zz": 1,
            "aa": {"b": 1},
            "schedule": {"zone": "x", "q": 2},
        },
        "extra": [1],
    }
    assert st.prune(obj, crontab_schema()) == [
        "metadata.foo",
        "extra",
        "spec.aa",
        "spec.schedule.q",
        "spec.zz",
    ]
    assert obj == {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "x", "labels": {"a": "b"}},
        "spec": {"cronSpec": "* * * * */5", "schedule": {"zone": "x"}},
    }


def test_prune_respects_preserve_unknown_fields_and_maps() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {
                    "known": {"type": "object", "properties": {"a": {"type": "string"}}}
                },
            },
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"n": {"type": "string"}}},
            },
        },
    }
    obj = {
        "spec": {"free": {"deep": [1]}, "known": {"a": "x", "b": "pruned"}},
        "labels": {"any": "key"},
        "items": [{"n": "a", "drop": 1}, {"n": "b"}],
    }
    assert st.prune(obj, schema) == ["items[0].drop", "spec.known.b"]
    assert obj["spec"] == {"free": {"deep": [1]}, "known": {"a": "x"}}
    assert obj["labels"] == {"any": "key"}


def test_prune_embedded_resources() -> None:
    schema = {
        "type": "object",
        "properties": {
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}},
            }
        },
    }
    obj = {
        "template": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "bogus": 1},
            "spec": {"x": "1", "y": 2},
        }
    }
    assert st.prune(obj, schema) == ["template.metadata.bogus", "template.spec.y"]
    assert obj == {
        "template": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"x": "1"},
        }
    }


def test_prune_with_no_schema_keeps_nothing() -> None:
    obj = {"apiVersion": "v", "kind": "K", "metadata": {"name": "n"}, "spec": {"a": 1}}
    assert st.prune(obj, {"type": "object"}) == ["spec"]
    assert obj == {"apiVersion": "v", "kind": "K", "metadata": {"name": "n"}}


# ---- defaulting --------------------------------------------------------------------------------------


def test_defaults_apply_where_the_parent_exists() -> None:
    obj: dict[str, Any] = {"spec": {"cronSpec": "x"}}
    st.apply_defaults(obj, crontab_schema())
    assert obj == {"spec": {"cronSpec": "x", "replicas": 1}}, (
        "schedule.zone needs a schedule object"
    )
    obj = {"spec": {"cronSpec": "x", "schedule": {}}}
    st.apply_defaults(obj, crontab_schema())
    assert obj["spec"]["schedule"] == {"zone": "UTC"}
    empty: dict[str, Any] = {}
    st.apply_defaults(empty, crontab_schema())
    assert empty == {}, "no spec, no defaults inside it"


def test_nulls_are_defaulted_or_dropped() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "default": "A"},
            "b": {"type": "string"},
            "c": {"type": "string", "nullable": True},
            "d": {
                "type": "object",
                "default": {"x": 1},
                "properties": {"x": {"type": "integer"}, "y": {"type": "integer", "default": 2}},
            },
        },
    }
    obj: dict[str, Any] = {"a": None, "b": None, "c": None}
    st.apply_defaults(obj, schema)
    assert obj == {"a": "A", "c": None, "d": {"x": 1, "y": 2}}
    obj["d"]["x"] = 5
    assert schema["properties"]["d"]["default"] == {"x": 1}, "defaults are copied"


def test_defaults_in_lists_and_maps() -> None:
    schema = {
        "type": "object",
        "properties": {
            "ports": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"protocol": {"type": "string", "default": "TCP"}},
                },
            },
            "m": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"v": {"type": "integer", "default": 0}},
                },
            },
        },
    }
    obj: dict[str, Any] = {"ports": [{}, {"protocol": "UDP"}], "m": {"k": {}}}
    st.apply_defaults(obj, schema)
    assert obj == {"ports": [{"protocol": "TCP"}, {"protocol": "UDP"}], "m": {"k": {"v": 0}}}


# ---- value validation ----------------------------------------------------------------------------------


def test_valid_object() -> None:
    obj = {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "x"},
        "spec": {"cronSpec": "* * * * */5", "image": "i", "replicas": 3},
    }
    assert st.validate_custom(obj, crontab_schema()) == []


def test_type_required_pattern_and_range_messages() -> None:
    obj = {"spec": {"replicas": "3", "image": 5}}
    assert rendered(st.validate_custom(obj, crontab_schema())) == [
        "spec.cronSpec: Required value",
        'spec.image: Invalid value: "integer": spec.image in body must be of type string: "integer"',
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"',
    ]
    causes = st.validate_custom({"spec": {"cronSpec": "nope", "replicas": 20}}, crontab_schema())
    assert rendered(causes) == [
        f"spec.cronSpec: Invalid value: \"nope\": spec.cronSpec in body should match '{CRON}'",
        "spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10",
    ]
    assert causes[0]["reason"] == "FieldValueInvalid"
    type_cause = st.validate_custom(
        {"spec": {"cronSpec": "x", "replicas": True}},
        {
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}}
            },
        },
    )
    assert type_cause[0]["reason"] == "FieldValueTypeInvalid"


def test_number_rules() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
            "b": {"type": "integer", "multipleOf": 5},
            "c": {"type": "integer"},
            "d": {"type": "number", "maximum": 1.5},
        },
    }
    assert rendered(st.validate_custom({"a": 0, "b": 7, "c": 2.0, "d": 1.75}, schema)) == [
        "a: Invalid value: 0: a in body should be greater than 0",
        "b: Invalid value: 7: b in body should be a multiple of 5",
        "d: Invalid value: 1.75: d in body should be less than or equal to 1.5",
    ]
    assert rendered(st.validate_custom({"c": 2.5}, schema)) == [
        'c: Invalid value: "number": c in body must be of type integer: "number"'
    ]


def test_string_array_object_rules() -> None:
    schema = {
        "type": "object",
        "properties": {
            "s": {"type": "string", "minLength": 3, "maxLength": 4},
            "l": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
            "o": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "minProperties": 1,
                "maxProperties": 1,
            },
            "e": {"type": "string", "enum": ["a", "b"]},
            "n": {"type": "integer", "enum": [1, 2]},
        },
    }
    obj = {"s": "toolong", "l": ["a", 1, "c"], "o": {"x": "1", "y": "2"}, "e": "c", "n": 3}
    assert rendered(st.validate_custom(obj, schema)) == [
        "s: Too long: may not be more than 4 bytes",
        'l[1]: Invalid value: "integer": l[1] in body must be of type string: "integer"',
        "l: Too many: 3: must have at most 2 items",
        "o: Too many: 2: must have at most 1 items",
        'e: Unsupported value: "c": supported values: "a", "b"',
        'n: Unsupported value: 3: supported values: "1", "2"',
    ]
    assert rendered(st.validate_custom({"s": "ab", "l": [], "o": {}}, schema)) == [
        's: Invalid value: "ab": s in body should be at least 3 chars long',
        "l: Invalid value: 0: l in body should have at least 1 items",
        "o: Invalid value: 1: o in body should have at least 1 properties",
    ]


def test_formats() -> None:
    schema = {
        "type": "object",
        "properties": {
            "t": {"type": "string", "format": "date-time"},
            "d": {"type": "string", "format": "date"},
            "ip": {"type": "string", "format": "ipv4"},
            "u": {"type": "string", "format": "uuid"},
            "q": {"type": "string", "format": "quantity"},
            "free": {"type": "string", "format": "my-own-format"},
        },
    }
    good = {
        "t": "2024-01-02T03:04:05Z",
        "d": "2024-02-29",
        "ip": "10.0.0.1",
        "u": "123e4567-e89b-12d3-a456-426614174000",
        "q": "10Gi",
        "free": "anything",
    }
    assert st.validate_custom(good, schema) == []
    bad = {"t": "yesterday", "d": "2023-02-29", "ip": "::1", "u": "nope", "q": "lots"}
    assert rendered(st.validate_custom(bad, schema)) == [
        't: Invalid value: "yesterday": t in body must be of type date-time: "yesterday"',
        'd: Invalid value: "2023-02-29": d in body must be of type date: "2023-02-29"',
        'ip: Invalid value: "::1": ip in body must be of type ipv4: "::1"',
        'u: Invalid value: "nope": u in body must be of type uuid: "nope"',
        'q: Invalid value: "lots": q in body must be of type quantity: "lots"',
    ]


def test_nullable_and_int_or_string() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "string", "nullable": True},
            "s": {"type": "string"},
            "port": {
                "x-kubernetes-int-or-string": True,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
            },
        },
    }
    assert st.validate_custom({"n": None, "port": 80}, schema) == []
    assert st.validate_custom({"port": "http"}, schema) == []
    assert rendered(st.validate_custom({"s": None, "port": True}, schema)) == [
        's: Invalid value: "null": s in body must be of type string: "null"',
        'port: Invalid value: "boolean": port in body must be of type integer,string: "boolean"',
        '<nil>: Invalid value: "": "port" must validate at least one schema (anyOf)',
    ]


def test_junctors() -> None:
    schema = {
        "type": "object",
        "properties": {
            "v": {
                "type": "string",
                "oneOf": [{"pattern": "^a"}, {"pattern": "b$"}],
                "not": {"enum": ["forbidden"]},
                "allOf": [{"minLength": 2}],
            }
        },
    }
    assert st.validate_custom({"v": "ax"}, schema) == []
    assert rendered(st.validate_custom({"v": "ab"}, schema)) == [
        '<nil>: Invalid value: "": "v" must validate one and only one schema (oneOf). Found 2 valid alternatives'
    ]
    assert rendered(st.validate_custom({"v": "x"}, schema)) == [
        'v: Invalid value: "x": v in body should be at least 2 chars long',
        '<nil>: Invalid value: "": "v" must validate all the schemas (allOf). None validated',
        '<nil>: Invalid value: "": "v" must validate one and only one schema (oneOf). Found none valid',
    ]
    assert (
        '"v" must not validate the schema (not)'
        in rendered(st.validate_custom({"v": "forbidden"}, schema))[-1]
    )


def test_list_types() -> None:
    schema = {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "ports": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}},
                    "required": ["name"],
                },
            },
            "pairs": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["a", "b"],
                "items": {
                    "type": "object",
                    "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
                },
            },
        },
    }
    obj = {
        "tags": ["a", "b", "a", "a"],
        "ports": [{"name": "x"}, {"name": "y"}, {"name": "x"}],
        "pairs": [{"a": "1", "b": 1}, {"a": "1", "b": 2}, {"a": "1", "b": 1}],
    }
    causes = st.validate_custom(obj, schema)
    assert rendered(causes) == [
        'tags[2]: Duplicate value: "a"',
        'ports[2]: Duplicate value: map[string]interface {}{"name":"x"}',
        'pairs[2]: Duplicate value: map[string]interface {}{"a":"1", "b":1}',
    ]
    assert causes[0]["reason"] == "FieldValueDuplicate"
    bad_items = st.validate_custom({"ports": ["x"]}, schema)
    assert (
        rendered(bad_items)[-1]
        == 'ports[0]: Invalid value: "x": must be an object for an array of list-type map'
    )


def test_additional_properties_false() -> None:
    schema = {
        "type": "object",
        "properties": {"m": {"type": "object", "additionalProperties": False}},
    }
    assert rendered(st.validate_custom({"m": {"k": 1}}, schema)) == [
        'm: Invalid value: "k": m.k in body is a forbidden property'
    ]


# ---- structural rules --------------------------------------------------------------------------------------

ROOT = "spec.validation.openAPIV3Schema"


def test_structural_schema_passes() -> None:
    assert st.check_structural(crontab_schema()) == []
    assert st.check_structural(crontab_schema(), status_enabled=True) == []


def test_missing_types() -> None:
    schema = {
        "properties": {
            "spec": {"properties": {"x": {"description": "no type"}}},
            "list": {"type": "array", "items": {}},
        }
    }
    assert rendered(st.check_structural(schema)) == sorted(
        [
            f"{ROOT}.type: Required value: must not be empty at the root",
            f"{ROOT}.properties[spec].type: Required value: must not be empty for specified object fields",
            f"{ROOT}.properties[spec].properties[x].type: Required value: must not be empty for specified object fields",
            f"{ROOT}.properties[list].items.type: Required value: must not be empty for specified array items",
        ]
    )


def test_forbidden_constructs() -> None:
    schema = {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "properties": {
            "a": {
                "type": "object",
                "properties": {"b": {"type": "string"}},
                "additionalProperties": {"type": "string"},
            },
            "r": {"$ref": "#/definitions/x"},
            "n": {"type": "null"},
            "u": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "p": {"type": "object", "x-kubernetes-preserve-unknown-fields": False},
        },
    }
    got = rendered(st.check_structural(schema, path="spec.versions[0].schema.openAPIV3Schema"))
    root = "spec.versions[0].schema.openAPIV3Schema"
    for expected in [
        f"{root}.additionalProperties: Forbidden: must not be used at the root",
        f"{root}.additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
        f"{root}.properties[a].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
        f"{root}.properties[r].$ref: Forbidden: $ref is not supported",
        f"{root}.properties[n].type: Forbidden: type cannot be set to null, use nullable as an alternative",
        f'{root}.properties[n].type: Unsupported value: "null": supported values: "array", "boolean", "integer", "number", "object", "string"',
        f"{root}.properties[u].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        f"{root}.properties[p].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined",
    ]:
        assert expected in got, expected


def test_metadata_may_only_restrict_name() -> None:
    ok = {
        "type": "object",
        "properties": {
            "metadata": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": 10}},
            }
        },
    }
    assert st.check_structural(ok) == []
    bad = {
        "type": "object",
        "properties": {
            "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}
        },
    }
    assert rendered(st.check_structural(bad)) == [
        f"{ROOT}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, "
        "but metadata is implicitly specified"
    ]
    defaulted = {"type": "object", "properties": {"metadata": {"type": "object", "default": {}}}}
    assert (
        f"{ROOT}.properties[metadata].default: Forbidden: must not be set in top-level metadata"
        in rendered(st.check_structural(defaulted))
    )


def test_value_validations_must_be_structural() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "anyOf": [
            {"type": "object", "properties": {"a": {"description": "x"}}},
            {"properties": {"b": {}}},
        ],
    }
    got = rendered(st.check_structural(schema))
    assert f"{ROOT}.anyOf[0].type: Forbidden: must be empty to be structural" in got
    assert (
        f"{ROOT}.anyOf[0].properties[a].description: Forbidden: must be empty to be structural"
        in got
    )
    assert (
        f"{ROOT}.properties[b]: Required value: because it is defined in {ROOT}.anyOf[1].properties[b]"
        in got
    )
    int_or_string = {
        "type": "object",
        "properties": {
            "p": {
                "x-kubernetes-int-or-string": True,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
            }
        },
    }
    assert st.check_structural(int_or_string) == []


def test_defaults_must_validate_and_be_pruned() -> None:
    schema = crontab_schema()
    schema["properties"]["spec"]["properties"]["replicas"]["default"] = "one"
    schema["properties"]["spec"]["properties"]["schedule"]["default"] = {"zone": "UTC", "extra": 1}
    got = rendered(st.check_structural(schema))
    assert got == [
        f'{ROOT}.properties[spec].properties[replicas].default: Invalid value: "string":  in body must be of type integer: "string"',
        f"{ROOT}.properties[spec].properties[schedule].default: Invalid value: map[string]interface {{}}"
        '{"extra":1, "zone":"UTC"}: must not have unknown fields',
    ]


def test_list_extension_rules() -> None:
    schema = {
        "type": "object",
        "properties": {
            "m": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}}},
            },
            "k": {
                "type": "array",
                "x-kubernetes-list-map-keys": ["x"],
                "items": {"type": "string"},
            },
            "t": {"type": "string", "x-kubernetes-list-type": "set"},
            "w": {"type": "array", "x-kubernetes-list-type": "weird", "items": {"type": "string"}},
        },
    }
    got = rendered(st.check_structural(schema))
    assert (
        f"{ROOT}.properties[m].items.properties[name].default: Required value: this property is in "
        "x-kubernetes-list-map-keys, so it must have a default or be a required property"
    ) in got
    assert (
        f"{ROOT}.properties[k].x-kubernetes-list-type: Required value: must be map if x-kubernetes-list-map-keys is non-empty"
        in got
    )
    assert (
        f'{ROOT}.properties[t].type: Invalid value: "string": must be array if x-kubernetes-list-type is specified'
        in got
    )
    assert (
        f'{ROOT}.properties[w].x-kubernetes-list-type: Unsupported value: "weird": supported values: "atomic", "set", "map"'
        in got
    )


def test_status_subresource_restricts_root() -> None:
    schema = {"type": "object", "properties": {}, "nullable": True}
    got = rendered(st.check_structural(schema, status_enabled=True))
    assert got[0].startswith(f"{ROOT}: Invalid value: ")
    assert (
        "fields are allowed at the root of the schema if the status subresource is enabled"
        in got[0]
    )
    assert f"{ROOT}.nullable: Forbidden: nullable cannot be true at the root" in got


# ---- CRD objects ---------------------------------------------------------------------------------------------


def test_crontab_crd_is_valid() -> None:
    assert st.validate_crd(crontab_crd()) == []


def test_crd_names_are_defaulted_before_validation() -> None:
    crd = crontab_crd()
    del crd["spec"]["names"]["singular"]
    assert st.validate_crd(crd) == []
    assert "singular" not in crd["spec"]["names"], "the caller's object is not modified"
    st.default_crd(crd)
    assert crd["spec"]["names"]["singular"] == "crontab"
    assert crd["spec"]["names"]["listKind"] == "CronTabList"
    assert crd["spec"]["conversion"] == {"strategy": "None"}


def test_crd_spec_errors() -> None:
    crd = crontab_crd(group="example", scope="Global")
    crd["metadata"]["name"] = "crontabs.example.com"
    crd["spec"]["names"]["plural"] = "CronTabs"
    crd["spec"]["names"]["listKind"] = "CronTab"
    got = rendered(st.validate_crd(crd))
    assert (
        got[0]
        == 'metadata.name: Invalid value: "crontabs.example.com": must be spec.names.plural+"."+spec.group'
    )
    assert 'spec.group: Invalid value: "example": should be a domain with at least one dot' in got
    assert (
        'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"' in got
    )
    assert any(
        g.startswith('spec.names.plural: Invalid value: "CronTabs": a DNS-1035 label') for g in got
    )
    assert (
        'spec.names.listKind: Invalid value: "CronTab": kind and listKind may not be the same'
        in got
    )


def test_crd_versions() -> None:
    crd = crontab_crd()
    v1 = crd["spec"]["versions"][0]
    v2 = copy.deepcopy(v1)
    v2["storage"] = True
    v2["schema"] = {
        "openAPIV3Schema": {"type": "object", "properties": {"spec": {"properties": {}}}}
    }
    crd["spec"]["versions"].append(v2)
    got = rendered(st.validate_crd(crd))
    assert (
        "spec.versions[1].schema.openAPIV3Schema.properties[spec].type: Required value: "
        "must not be empty for specified object fields"
    ) in got
    assert any(
        g.startswith("spec.versions: Invalid value: [")
        and g.endswith("must contain unique version names")
        for g in got
    )
    assert any(g.endswith("must have exactly one version marked as storage version") for g in got)


def test_single_version_schema_errors_use_the_top_level_path() -> None:
    crd = crontab_crd()
    v3(crd)["properties"]["spec"]["properties"]["x"] = {"description": "untyped"}
    assert rendered(st.validate_crd(crd)) == [
        f"{ROOT}.properties[spec].properties[x].type: Required value: must not be empty for specified object fields"
    ]


def test_schema_required() -> None:
    crd = crontab_crd()
    del crd["spec"]["versions"][0]["schema"]
    assert rendered(st.validate_crd(crd)) == [
        "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"
    ]


def test_subresources_and_columns() -> None:
    crd = crontab_crd()
    v = crd["spec"]["versions"][0]
    v["subresources"]["scale"] = {
        "specReplicasPath": "spec.replicas",
        "statusReplicasPath": ".spec.replicas",
        "labelSelectorPath": ".metadata.labels",
    }
    v["additionalPrinterColumns"] = [
        {"name": "", "type": "str", "jsonPath": "spec"},
        {"name": "A", "type": "integer", "format": "big"},
    ]
    assert rendered(st.validate_crd(crd)) == [
        'spec.subresources.scale.specReplicasPath: Invalid value: "spec.replicas": must be a simple json path starting with .',
        'spec.subresources.scale.statusReplicasPath: Invalid value: ".spec.replicas": should be a json path under .status',
        'spec.subresources.scale.labelSelectorPath: Invalid value: ".metadata.labels": should be a json path under either .spec or .status',
        "spec.additionalPrinterColumns[0].name: Required value",
        'spec.additionalPrinterColumns[0].type: Invalid value: "str": must be one of boolean,date,integer,number,string',
        'spec.additionalPrinterColumns[0].JSONPath: Invalid value: "spec": must be a simple json path starting with .',
        'spec.additionalPrinterColumns[1].format: Invalid value: "big": must be one of byte,date,date-time,double,float,int32,int64,password',
        "spec.additionalPrinterColumns[1].JSONPath: Required value",
    ]


def test_status_subresource_root_rule_applies_to_the_crd() -> None:
    crd = crontab_crd()
    v3(crd)["additionalProperties"] = False
    got = rendered(st.validate_crd(crd))
    assert any(
        "fields are allowed at the root of the schema if the status subresource is enabled" in g
        for g in got
    )


def test_update_immutables() -> None:
    old = crontab_crd()
    new = crontab_crd(scope="Cluster")
    assert st.validate_crd(new, old=old) == [], "scope may change before the CRD is established"
    old["status"] = {"conditions": [{"type": "Established", "status": "True"}]}
    assert rendered(st.validate_crd(new, old=old)) == [
        'spec.scope: Invalid value: "Cluster": field is immutable'
    ]
    renamed = crontab_crd(group="other.example.com")
    renamed["metadata"]["name"] = "crontabs.other.example.com"
    assert 'spec.group: Invalid value: "other.example.com": field is immutable' in rendered(
        st.validate_crd(renamed, old=old)
    )


def test_stored_versions_on_update() -> None:
    old = crontab_crd()
    new = crontab_crd()
    new["status"] = {"storedVersions": ["v1", "v0"]}
    got = rendered(st.validate_crd(new, old=old))
    assert got and got[0].startswith(
        'status.storedVersions[1]: Invalid value: "v0": missing from spec.versions'
    )


def test_protected_groups_need_approval() -> None:
    crd = crontab_crd(group="stable.k8s.io")
    crd["metadata"]["name"] = "crontabs.stable.k8s.io"
    got = rendered(st.validate_crd(crd))
    assert got == [
        "metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval "
        'annotation "api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/pull/1111'
    ]
    crd["metadata"]["annotations"] = {"api-approved.kubernetes.io": "unapproved, testing"}
    assert st.validate_crd(crd) == []


def test_preserve_unknown_fields_and_conversion() -> None:
    crd = crontab_crd(preserveUnknownFields=True, conversion={"strategy": "Webhook", "webhook": {}})
    got = rendered(st.validate_crd(crd))
    assert (
        "spec.preserveUnknownFields: Invalid value: true: must be false in order to use defaults in the schema"
        in got
    )
    assert (
        'spec.conversion.strategy: Invalid value: "Webhook": must be None if spec.preserveUnknownFields is true'
        in got
    )
    assert (
        "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook"
        in got
    )
    assert "spec.conversion.conversionReviewVersions: Required value" in got
    assert (
        "spec.preserveUnknownFields: Invalid value: true: cannot set to true, set "
        "x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"
    ) in got


def test_causes_have_upstream_reasons() -> None:
    crd = crontab_crd(scope="")
    causes = st.validate_crd(crd)
    assert causes == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.scope"}
    ]


def test_go_renderings() -> None:
    assert st.go_float(1.0) == "1"
    assert st.go_float(0.00001) == "1e-05"
    assert st.go_float(1e21) == "1e+21"
    assert st.go_quote('a"b\n') == '"a\\"b\\n"'
    assert (
        st.go_sharp({"b": [1, "x"], "a": None})
        == 'map[string]interface {}{"a":interface {}(nil), "b":[]interface {}{1, "x"}}'
    )


def test_go_regular_expressions() -> None:
    assert st.regex_error("^(?i)(abort|warn)?$") is None
    rx = st.go_regex("^(?i)(abort|warn)?$")
    assert rx is not None and rx.search("ABORT")
    posix = st.go_regex(r"^[[:alpha:]]+\z")
    assert posix is not None and posix.search("abc") and not posix.search("ab1")
    assert st.regex_error(r"\pL+") is None, "valid RE2 Python cannot run is not an error"
    schema = {"type": "object", "properties": {"p": {"type": "string", "pattern": "["}}}
    assert rendered(st.check_structural(schema)) == [
        f'{ROOT}.properties[p].pattern: Invalid value: "[": must be a valid regular expression, '
        "but isn't: error parsing regexp: unterminated character set: `[`"
    ]


def test_operator_style_crd() -> None:
    """Shapes controller-gen emits: int-or-string with anyOf, list maps, inline flags."""
    schema = {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "properties": {
                    "groups": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string", "minLength": 1},
                                "strategy": {"type": "string", "pattern": "^(?i)(abort|warn)?$"},
                                "labels": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                                "rules": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["expr"],
                                        "properties": {
                                            "expr": {
                                                "anyOf": [{"type": "integer"}, {"type": "string"}],
                                                "x-kubernetes-int-or-string": True,
                                            }
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            },
        },
    }
    assert st.check_structural(schema) == []
    obj: dict[str, Any] = {
        "apiVersion": "monitoring.example.com/v1",
        "kind": "Rule",
        "metadata": {"name": "r"},
        "spec": {
            "groups": [
                {"name": "g", "strategy": "WARN", "rules": [{"expr": "up == 0"}, {"expr": 1}]}
            ]
        },
    }
    assert st.validate_custom(obj, schema) == []
    obj["spec"]["groups"].append({"name": "g", "strategy": "never", "rules": [{}]})
    assert rendered(st.validate_custom(obj, schema)) == [
        "spec.groups[1].strategy: Invalid value: \"never\": spec.groups[1].strategy in body should match '^(?i)(abort|warn)?$'",
        "spec.groups[1].rules[0].expr: Required value",
        'spec.groups[1]: Duplicate value: map[string]interface {}{"name":"g"}',
    ]
