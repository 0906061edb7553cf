"""Per-op lowerings. Every module here registers with `codegen.lower.lowering`."""
