"""gas_archiver."""
