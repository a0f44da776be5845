"""Parts domain: catalog, serialised parts, robots, the remanufacturing event record, scanning and labels."""
