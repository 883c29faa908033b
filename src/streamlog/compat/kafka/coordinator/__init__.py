"""kafka-python's ``kafka.coordinator`` (assignor names only)."""
