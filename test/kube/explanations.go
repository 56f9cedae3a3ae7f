package kube

// Explanations are the reasons docs/kubernetes.md gives for the specs that
// do not pass, found by reading each failure.
var Explanations = []Explanation{
	// The Secrets and the ConfigMap spec alike.
	{Match: "should be consumable via the environment",
		Reason: "stand-in image: the spec runs `sh -c env` in busybox and wants `data-1=value-1`; netshim passes the variable " +
			"(busybox's own `env` prints it), but Debian's busybox 1.35 shell drops variables whose names are not shell " +
			"identifiers, where upstream's busybox 1.37 image keeps them"},
}
