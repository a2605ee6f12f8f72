"""Validation of built-in kinds; the implementation lives in the ``validate`` package."""

from k3py.server.registry.validate import RULES, KindRules, check_types, validate, validate_custom

__all__ = ["validate", "validate_custom", "check_types", "RULES", "KindRules"]
