"""gas_notifier."""
