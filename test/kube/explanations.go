package kube

// Explanations are the reasons docs/kubernetes.md gives for the specs that
// do not pass, found by reading each failure.
var Explanations = []Explanation{}
