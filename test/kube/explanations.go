package kube

// Explanations are the reasons docs/kubernetes.md gives for the specs that
// do not pass, found by reading each failure.
var Explanations = []Explanation{
	{Match: "PrivilegedPod [NodeConformance] should enable privileged commands",
		Reason: "this machine's kernel has no dummy link type: the spec's `ip link add dummy1 type dummy` fails the same way " +
			"as root in a fresh network namespace on the host (`Error: Unknown device type`); not netshim's"},
	// The Secrets and the ConfigMap spec alike.
	{Match: "should be consumable via the environment",
		Reason: "stand-in image: the spec runs `sh -c env` in busybox and wants `data-1=value-1`; netshim passes the variable " +
			"(busybox's own `env` prints it), but Debian's busybox 1.35 shell drops variables whose names are not shell " +
			"identifiers, where upstream's busybox 1.37 image keeps them"},
}
