// Package kubebin exists only so this module has a root package; the
// binaries live under cmd/. It builds the control plane, the node components
// and the pause program from the Go module proxy for exalb's tests.
package kubebin
