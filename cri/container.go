package cri

// Containers is what the server needs of the container manager (package container).
type Containers interface{}
