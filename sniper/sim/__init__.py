"""The bundled Gate API v4 exchange simulator: a pure engine and thin servers around it."""
