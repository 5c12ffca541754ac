"""Per-pixel feature families and the declarative feature spec."""

from .spec import (DEFAULT_SPEC, KINDS, SpecError, apply_support, compute_context,
                   compute_features, context_names, default_spec, feature_names, has_context,
                   needed_names, validate_spec, without_context, working_shape)

__all__ = ["DEFAULT_SPEC", "KINDS", "SpecError", "apply_support", "compute_context",
           "compute_features", "context_names", "default_spec", "feature_names", "has_context",
           "needed_names", "validate_spec", "without_context", "working_shape"]
