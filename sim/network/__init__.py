"""Network: topologies, links, message accounting."""
