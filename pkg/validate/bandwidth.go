package validate

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

// IngressBandwidthAnnotation and EgressBandwidthAnnotation are the pod annotations kubelet's bandwidth shaping reads.
const (
	IngressBandwidthAnnotation = "kubernetes.io/ingress-bandwidth"
	EgressBandwidthAnnotation  = "kubernetes.io/egress-bandwidth"
)

// Kubelet accepted rates from 1 kbit/s to 1 Pbit/s.
const (
	minBandwidth = 1000
	maxBandwidth = 1_000_000_000_000_000
)

// quantityRE is the part of Kubernetes' quantity syntax that rates use: a
// decimal number and an optional SI or binary suffix.
var quantityRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)(k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$`)

var quantitySuffix = map[string]*big.Rat{
	"":  big.NewRat(1, 1),
	"k": pow(1000, 1), "M": pow(1000, 2), "G": pow(1000, 3), "T": pow(1000, 4), "P": pow(1000, 5), "E": pow(1000, 6),
	"Ki": pow(1024, 1), "Mi": pow(1024, 2), "Gi": pow(1024, 3), "Ti": pow(1024, 4), "Pi": pow(1024, 5), "Ei": pow(1024, 6),
}

func pow(base, exp int64) *big.Rat {
	r := big.NewRat(1, 1)
	for range exp {
		r.Mul(r, big.NewRat(base, 1))
	}
	return r
}

// parseBandwidth reads a rate quantity such as "10M" as bits per second,
// rounded up as Kubernetes rounds quantities.
func parseBandwidth(s string) (int64, bool) {
	m := quantityRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, false
	}
	n, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return 0, false
	}
	n.Mul(n, quantitySuffix[m[2]])
	q, r := new(big.Int).QuoRem(n.Num(), n.Denom(), new(big.Int))
	if r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() || q.Int64() < minBandwidth || q.Int64() > maxBandwidth {
		return 0, false
	}
	return q.Int64(), true
}

// Bandwidth returns the rates (bits per second, 0 for none) that a pod's
// shaping annotations ask for, refusing a rate kubelet would not pass.
func Bandwidth(annotations map[string]string) (ingress, egress int64, err error) {
	for _, a := range []struct {
		key  string
		rate *int64
	}{{IngressBandwidthAnnotation, &ingress}, {EgressBandwidthAnnotation, &egress}} {
		v, ok := annotations[a.key]
		if !ok {
			continue
		}
		rate, ok := parseBandwidth(v)
		if !ok {
			return 0, 0, invalid(fmt.Sprintf("config.annotations[%q]", a.key), "%q is not a rate between 1k and 1P bits per second (e.g. 10M)", v)
		}
		*a.rate = rate
	}
	return ingress, egress, nil
}
