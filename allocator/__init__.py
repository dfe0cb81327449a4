"""The IP allocator: pools, allocation, Service status and the shared ConfigMap."""
