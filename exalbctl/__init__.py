"""exalbctl: the operator CLI (a later issue; the entry point is reserved)."""
