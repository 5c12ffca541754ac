"""Per-pixel feature families and the declarative feature spec."""

from .spec import (DEFAULT_SPEC, KINDS, SpecError, compute_features, default_spec,
                   feature_names, validate_spec, working_shape)

__all__ = ["DEFAULT_SPEC", "KINDS", "SpecError", "compute_features", "default_spec",
           "feature_names", "validate_spec", "working_shape"]
