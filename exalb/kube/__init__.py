"""Kubernetes adapters shared by the allocator and the announcer.

Everything that talks to the API server lives here or in a process's own
``kube`` adapters; the pure cores never import the client library.
"""
