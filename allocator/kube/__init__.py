"""The allocator's Kubernetes adapters: watches in, Service/IPPool/ConfigMap writes out."""
