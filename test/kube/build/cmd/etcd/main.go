// Command etcd is etcd's server, from go.etcd.io/etcd/server/v3 at the
// version Kubernetes v1.34 pins, for the cluster's control plane.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
