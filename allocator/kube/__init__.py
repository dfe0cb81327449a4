"""The allocator's Kubernetes adapters: watches in, Service/VIPPool/ConfigMap writes out."""
