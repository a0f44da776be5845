"""refurb: the tracker that runs a robot remanufacturing center."""

__version__ = "0.1.0"
