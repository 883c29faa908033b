"""The coordination layer: the metadata directory shared by processes (topic catalog; later groups,
committed offsets and transactions). Imports the storage layer, never the clients."""
