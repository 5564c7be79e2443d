package solver

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// A program's policy says who may use it (allowedNamespaces) and for which
// names (allowedDomains). A program that holds the admin's credentials
// (env, passEnv) can otherwise be used by every namespace for every name those
// credentials can write.

// PolicyError is a request refused by a program's allowedNamespaces or
// allowedDomains. Its message names the program and what was asked, never the
// allowed lists: every tenant reads a Challenge's status, and the lists say
// who else uses the program and for which names. The lists go to the admin's
// log (logValues).
type PolicyError struct {
	Program string
	// Field is "namespace", "domain" (the name being validated) or "record"
	// (the record name a default-mode program would be given to write).
	Field string
	Asked string
	// From is, for a record, the name whose CNAME cert-manager followed to it.
	From    string
	Allowed []string
}

func (e *PolicyError) Error() string {
	switch e.Field {
	case "namespace":
		return fmt.Sprintf("program %q may not be used from namespace %q; ask the cluster admin to add it to the program's allowedNamespaces", e.Program, e.Asked)
	case "record":
		return fmt.Sprintf("program %q may not write the record %q (cert-manager followed a CNAME from %q): it is outside the program's allowedDomains; point the CNAME inside them, or ask the cluster admin to add the record's domain", e.Program, e.Asked, e.From)
	}
	return fmt.Sprintf("program %q may not be used for %q; ask the cluster admin to add it to the program's allowedDomains", e.Program, e.Asked)
}

// logValues are the key/values the admin's log of a refusal carries: the
// allowed list that the error leaves out.
func (e *PolicyError) logValues() []any {
	if e.Field == "namespace" {
		return []any{"allowedNamespaces", e.Allowed}
	}
	return []any{"allowedDomains", e.Allowed}
}

// AdmitIssuer checks an Issuer's webhook.config for a request from namespace
// (the Issuer's namespace, or cert-manager's cluster resource namespace for a
// ClusterIssuer): exact keys, a configured program, env names the program
// allows, and the program's allowedNamespaces. It is everything the webhook
// checks about an Issuer before the name being validated, and the verdict the
// chart's ValidatingAdmissionPolicy mirrors.
func (c *Config) AdmitIssuer(rawConfig []byte, namespace string) (*Program, IssuerConfig, error) {
	ic, err := ParseIssuerConfig(rawConfig)
	if err != nil {
		return nil, ic, err
	}
	p, err := c.selectProgram(ic)
	if err != nil {
		return nil, ic, err
	}
	if err := p.authorizeNamespace(namespace); err != nil {
		return nil, ic, err
	}
	return p, ic, nil
}

// authorizeNamespace refuses a namespace the program does not allow.
func (p *Program) authorizeNamespace(namespace string) error {
	if p.AllowedNamespaces == nil || slices.Contains(p.AllowedNamespaces, namespace) {
		return nil
	}
	return &PolicyError{Program: p.Name, Field: "namespace", Asked: namespace, Allowed: p.AllowedNamespaces}
}

// authorizeNames refuses a request whose names lie outside the program's
// allowedDomains: the name being validated and, in default mode, the record
// the program is given to write. cert-manager reaches that record by following
// a CNAME when the Issuer says cnameStrategy: Follow, so checking the
// identifier alone would let a tenant's CNAME send the program, and its
// credentials, into any zone. A RAW program is given the identifier and builds
// the record name itself.
func (p *Program) authorizeNames(dnsName, recordFQDN string) error {
	if err := p.authorizeDomain(dnsName); err != nil {
		return err
	}
	if p.Mode == ModeRaw || p.allowsName(recordFQDN) {
		return nil
	}
	return &PolicyError{Program: p.Name, Field: "record", Asked: recordFQDN, From: challengeFQDN("", dnsName), Allowed: p.AllowedDomains}
}

// authorizeDomain refuses an identifier outside the program's allowedDomains;
// a wildcard's "*." is ignored.
func (p *Program) authorizeDomain(dnsName string) error {
	name := strings.ToLower(rawDomain(dnsName))
	if p.allowsName(name) {
		return nil
	}
	return &PolicyError{Program: p.Name, Field: "domain", Asked: name, Allowed: p.AllowedDomains}
}

// allowsName reports whether name is one of the program's allowedDomains or
// below one of them on a label boundary, ignoring case and a trailing dot. A
// program without allowedDomains allows every name.
func (p *Program) allowsName(name string) bool {
	if p.AllowedDomains == nil {
		return true
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	for _, allowed := range p.AllowedDomains {
		if name == allowed || strings.HasSuffix(name, "."+allowed) {
			return true
		}
	}
	return false
}

// unrestrictedCredentials warns about a program that runs with the admin's
// variables (env, passEnv, or lego's whole environment) and that every
// namespace may use.
func (p *Program) unrestrictedCredentials() string {
	if p.AllowedNamespaces != nil {
		return ""
	}
	switch {
	case p.passAllEnv:
		return fmt.Sprintf("program %q (%s) runs with the webhook's whole environment and every namespace may use it; use a solver config file with allowedNamespaces", p.Name, EnvPath)
	case len(p.PassEnv) > 0 || len(p.Env) > 0:
		return fmt.Sprintf("program %q runs with the admin's env/passEnv and every namespace may use it; set allowedNamespaces (and allowedDomains) to limit who gets certificates with those credentials", p.Name)
	}
	return ""
}

func parseAllowedNamespaces(names []string) ([]string, error) {
	if names == nil {
		return nil, nil
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("allowedNamespaces: empty; list the namespaces that may use the program, or leave it out to allow every namespace")
	}
	for i, name := range names {
		if problems := validation.IsDNS1123Label(name); len(problems) > 0 {
			return nil, fmt.Errorf("allowedNamespaces[%d]: %q is not a namespace name: %s", i, name, strings.Join(problems, "; "))
		}
		if slices.Index(names, name) != i {
			return nil, fmt.Errorf("allowedNamespaces[%d]: %q is listed twice", i, name)
		}
	}
	return names, nil
}

func parseAllowedDomains(domains []string) ([]string, error) {
	if domains == nil {
		return nil, nil
	}
	if len(domains) == 0 {
		return nil, fmt.Errorf("allowedDomains: empty; list the domains the program may be used for, or leave it out to allow any")
	}
	normalized := make([]string, 0, len(domains))
	for i, domain := range domains {
		field := fmt.Sprintf("allowedDomains[%d]", i)
		if strings.HasPrefix(domain, "*.") {
			return nil, fmt.Errorf("%s: %q: write %q; the names below a domain are always included", field, domain, strings.TrimPrefix(domain, "*."))
		}
		if err := validateName(field, domain); err != nil {
			return nil, err
		}
		name := strings.ToLower(strings.TrimSuffix(domain, "."))
		if name == "" {
			return nil, fmt.Errorf("%s: %q is not a domain; name the domain the program may be used for", field, domain)
		}
		if slices.Contains(normalized, name) {
			return nil, fmt.Errorf("%s: %q is listed twice", field, domain)
		}
		normalized = append(normalized, name)
	}
	return normalized, nil
}
