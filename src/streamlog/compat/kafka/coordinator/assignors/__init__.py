"""kafka-python's assignor classes: the consumer uses streamlog's assignor of the same name."""
