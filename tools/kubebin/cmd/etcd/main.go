// Command etcd is etcd's own entry point, taken from the same module graph
// as kube-apiserver so both agree on the client and server versions.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
