// Command pause is the sandbox (pause) image's only program: it holds a pod's
// namespaces open until the runtime stops it. Static, no dependencies, so
// the test bed needs no registry for containerd's sandbox_image.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
