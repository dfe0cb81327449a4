"""The shared ConfigMap contract between the allocator and the announcers."""
