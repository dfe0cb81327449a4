"""Code both processes share: the assignments contract, Kubernetes plumbing, observability."""
