"""Consulting domain: advisory tickets, SLAs in business time, verdicts that drive part dispositions."""
