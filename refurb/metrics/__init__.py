"""Center-level figures: reuse scores, fleet reliability, circularity KPIs and part passports.

Services here gather rows from the other domains with a few aggregate queries and hand plain arrays to the pure
maths in :mod:`refurb.scoring`. Definitions and defaults: ``docs/api.md (metrics)``.
"""
