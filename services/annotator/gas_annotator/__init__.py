"""gas_annotator."""
