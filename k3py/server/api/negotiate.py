"""Content negotiation: which representation a client asked for.

kubectl asks for server-side Tables (``as=Table;g=meta.k8s.io;v=v1``), the Python
client and controllers for plain JSON or PartialObjectMetadata, discovery clients for
aggregated discovery (``as=APIGroupDiscoveryList``).  Protobuf is never spoken: a client
that offers protobuf with a JSON fallback gets JSON; one that accepts only protobuf
gets 406.
"""

from __future__ import annotations

from dataclasses import dataclass

from k3py.server import errors


@dataclass(frozen=True)
class MediaType:
    type: str  # application/json
    params: dict[str, str]

    @property
    def as_(self) -> str:
        return self.params.get("as", "")


@dataclass(frozen=True)
class Output:
    kind: str  # json | table | partial | discovery-v2 | yaml
    include_object: str = "Metadata"  # for tables: None | Metadata | Object
    table_version: str = "v1"
    discovery_version: str = "v2"


def parse_accept(header: str) -> list[MediaType]:
    out = []
    for raw in header.split(","):
        raw = raw.strip()
        if not raw:
            continue
        bits = [b.strip() for b in raw.split(";")]
        params = {}
        for b in bits[1:]:
            if "=" in b:
                k, v = b.split("=", 1)
                params[k.strip()] = v.strip()
        out.append(MediaType(bits[0].lower(), params))
    return out


_CHOSEN: dict[tuple[str, str], Output] = {}


def choose(accept: str, *, include_object: str = "") -> Output:
    """Pick the first representation we can produce, in the client's order."""
    key = (accept, include_object)
    hit = _CHOSEN.get(key)  # clients send the same few Accept headers over and over
    if hit is None:
        hit = _choose(accept, include_object=include_object)
        if len(accept) <= 512:
            if len(_CHOSEN) >= 1024:
                _CHOSEN.clear()
            _CHOSEN[key] = hit
    return hit


def _choose(accept: str, *, include_object: str) -> Output:
    if not accept:
        return Output("json")
    offered = parse_accept(accept)
    for mt in offered:
        if mt.type in ("application/json", "*/*", "application/*"):
            a = mt.as_
            if a == "Table" and mt.params.get("g") == "meta.k8s.io" and mt.params.get("v") in ("v1", "v1beta1"):
                return Output("table", include_object=include_object or "Metadata", table_version=mt.params["v"])
            if a in ("PartialObjectMetadata", "PartialObjectMetadataList") and mt.params.get("g") == "meta.k8s.io":
                return Output("partial", table_version=mt.params.get("v", "v1"))
            if a == "APIGroupDiscoveryList" and mt.params.get("g") == "apidiscovery.k8s.io":
                v = mt.params.get("v", "")
                if v in ("v2", "v2beta1"):
                    return Output("discovery-v2", discovery_version=v)
                continue
            if a:
                continue
            return Output("json")
        if mt.type in ("application/yaml",):
            return Output("yaml")
    raise errors.APIError(
        406,
        "NotAcceptable",
        "only the following media types are accepted: application/json, application/yaml",
    )
