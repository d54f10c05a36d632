"""gas_cli."""
