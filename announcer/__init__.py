"""The per-node BGP announcer driving ExaBGP."""
