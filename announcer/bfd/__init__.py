"""BFD for the announcer's BGP peers: a speaker process of its own and its parent-side handle."""
