"""Pure scoring maths: part reuse scores, circularity (MCI) and Weibull reliability.

Modules here import only the standard library, numpy and scipy. They validate their inputs first (``ValueError``
messages name the parameter), take arrays or frozen dataclasses and return frozen dataclasses.
"""
