"""gas_restorer."""
