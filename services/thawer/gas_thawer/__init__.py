"""gas_thawer."""
