// Package kubebin exists only so this module has a root package; the
// binaries live under cmd/. It builds kube-apiserver, etcd, kubectl and
// kube-controller-manager from the Go module proxy for exalb's tests.
package kubebin
