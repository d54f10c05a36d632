"""gas_core."""
