"""String formats beyond ``k3py.apimachinery.names``: ports, IPs, CIDRs, percents, paths.

Each ``check_*`` returns upstream's messages (empty when valid); ``name_is_*``
are the ``ValidateNameFunc`` family, where ``prefix`` (a ``generateName``)
tolerates a trailing dash.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from k3py.apimachinery import names

NameFn = Callable[[str, bool], list[str]]

_port_name_chars = re.compile(r"^[-a-z0-9]+$")
_one_letter = re.compile(r"[a-z]")
_percent = re.compile(r"^[0-9]+%$")
_http_header = re.compile(r"^[-A-Za-z0-9]+$")
_http_path = re.compile(r"^[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$")
_wildcard = re.compile(r"^\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

MAX_INT32 = 2**31 - 1


def inclusive_range(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def check_port_num(port: object) -> list[str]:
    if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
        return []
    return [inclusive_range(1, 65535)]


def check_port_name(port: str) -> list[str]:
    errs = []
    if len(port) > 15:
        errs.append("must be no more than 15 characters")
    if not _port_name_chars.match(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _one_letter.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``netutils.ParseIPSloppy``: also accepts IPv4 octets with leading zeros."""
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        pass
    parts = value.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):
        try:
            return ipaddress.IPv4Address(".".join(str(int(p)) for p in parts))
        except ValueError:
            return None
    return None


def check_ip(value: str) -> list[str]:
    if parse_ip(value) is None:
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    return []


def parse_cidr(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if "/" not in value:
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def check_cidr(value: str) -> list[str]:
    if parse_cidr(value) is None:
        return ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
    return []


def check_percent(value: str) -> list[str]:
    if _percent.match(value):
        return []
    return [
        "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  "
        "or '93%', regex used for validation is '[0-9]+%')"
    ]


def check_http_header_name(value: str) -> list[str]:
    if _http_header.match(value):
        return []
    return [
        "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. "
        "'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')"
    ]


def check_wildcard_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > names.DNS1123_SUBDOMAIN_MAX:
        errs.append(f"must be no more than {names.DNS1123_SUBDOMAIN_MAX} characters")
    if not _wildcard.match(value):
        errs.append(
            "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS "
            "subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and "
            "end with an alphanumeric character (e.g. '*.example.com', regex used for validation "
            "is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    return errs


def check_path_segment_name(name: str) -> list[str]:
    """``path.IsValidPathSegmentName`` (names of RBAC objects, scale targets)."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def check_relaxed_env_var_name(value: str) -> list[str]:
    errs = []
    if not value:
        errs.append("environment variable name must be non-empty")
    if any(ord(c) > 127 or not c.isprintable() or c == "=" for c in value):
        errs.append(
            "a valid environment variable name must consist only of printable ASCII characters "
            "other than '='"
        )
    return errs


def check_domain_prefixed_path(value: str) -> tuple[str, list[str]]:
    """(offending part, messages) for ``IsDomainPrefixedPath`` (IngressClass controller)."""
    host, _, path = value.partition("/")
    if not host or not path:
        return value, ['must be a domain-prefixed path (such as "acme.io/foo")']
    errs = names.check_dns1123_subdomain(host)
    if errs:
        return host, errs
    if not _http_path.match(path):
        regex = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+"
        return path, [f"Invalid path, regex used for validation is '{regex}'"]
    return value, []


def _mask_trailing_dash(name: str) -> str:
    return name[:-1] + "a" if len(name) > 1 and name.endswith("-") else name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return names.check_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return names.check_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    return names.check_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def name_is_path_segment(name: str, prefix: bool) -> list[str]:
    return check_path_segment_name(name)


def name_any(name: str, prefix: bool) -> list[str]:
    return []
