"""exalbctl's pure part: API objects in, reports out. No client, no I/O (tested by purity)."""
