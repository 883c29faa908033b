"""The clients layer: producer, consumer, partitioners.

Imports storage and coordination, never upward.
"""
