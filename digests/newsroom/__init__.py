"""The newsroom: editors' breaking pushes (one push service for every caller), corrections
and withdrawals, the CMS services, statistics."""
