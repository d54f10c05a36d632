"""gas_web."""
