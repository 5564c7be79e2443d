package solver

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// TestLeaseNamesDoNotCollide searches, as a tenant choosing zone names would,
// 300,000 zones whose readable part is the same for a pair with the same
// Lease name: colliding zones would share one Lease across replicas. With a
// 32-bit hash such a pair turns up after ~77,000 tries; with a full-strength
// one, never.
func TestLeaseNamesDoNotCollide(t *testing.T) {
	const prefix = "a-zone-name-long-enough-to-fill-the-readable-part"
	seen := make(map[string]string, 300000)
	for i := range 300000 {
		zone := fmt.Sprintf("%s-%d.example.com.", prefix, i)
		name := leaseName(zone)
		if other, ok := seen[name]; ok {
			t.Fatalf("zones %s and %s share the Lease %s", other, zone, name)
		}
		seen[name] = zone
	}
}

func TestLeaseName(t *testing.T) {
	tests := map[string]string{
		"example.com.": "exec-zone-example-com-a379a6f6eeafb9a55e378c118034e2751e682fab9f2d30ab13d2125586ce1947",
		"Example.COM":  "exec-zone-example-com-a379a6f6eeafb9a55e378c118034e2751e682fab9f2d30ab13d2125586ce1947",
		"xn--bcher-kva.example_sub.a-very-long-zone-name-that-is-cut.example.": "exec-zone-xn--bcher-kva-example-sub-a-very-long-zo-58a2f18bed1d4d10bea1a6be3bf87a98ce9264491291afeb1c1cf65b933a9740",
	}
	for zone, want := range tests {
		name := leaseName(zone)
		if name != want {
			t.Errorf("leaseName(%q) = %s, want %s", zone, name, want)
		}
		if problems := validation.IsDNS1123Subdomain(name); len(problems) > 0 {
			t.Errorf("leaseName(%q) = %s is not a valid object name: %v", zone, name, problems)
		}
	}
}
