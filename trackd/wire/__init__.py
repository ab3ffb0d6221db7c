"""The MoEngage wire: request shapes, validation, time parsing, type inference (pure functions)."""
