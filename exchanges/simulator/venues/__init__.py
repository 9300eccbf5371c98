"""One simulator plugin per venue: `exchanges.simulator.venues.<venue>.VENUE_CLASS`."""
