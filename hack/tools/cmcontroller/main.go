// Command cmcontroller is TEST INFRASTRUCTURE for the end-to-end tests and
// `make demo`: cert-manager's own ACME and certificate controllers, run from
// cert-manager's controller packages. The upstream cmd/controller is a module
// the proxy does not serve (its dependencies include vcert versions it
// refuses), so this small main builds the same controllers without it. It is
// never part of the product.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"

	_ "github.com/cert-manager/cert-manager/pkg/controller/acmechallenges"
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmeorders"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/acme"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/acme"
)

// controllers are the ones an ACME issuance through a DNS-01 webhook needs.
var controllers = []string{
	"issuers", "clusterissuers",
	"certificates-trigger", "certificates-key-manager", "certificates-request-manager",
	"certificates-readiness", "certificates-issuing", "certificates-revision-manager",
	"certificaterequests-approver", "certificaterequests-issuer-acme",
	"orders", "challenges",
}

func main() {
	klog.InitFlags(nil)
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the API server")
	clusterResourceNamespace := flag.String("cluster-resource-namespace", "cert-manager", "namespace of ClusterIssuer Secrets")
	nameservers := flag.String("dns01-recursive-nameservers", "", "comma-separated host:port used for DNS-01 self checks and zone lookups")
	checkRetry := flag.Duration("dns01-check-retry-period", 2*time.Second, "time between DNS-01 self checks")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = logf.NewContext(ctx, klog.Background(), "cmcontroller")

	opts := controllerpkg.ContextOptions{
		Kubeconfig:         *kubeconfig,
		KubernetesAPIQPS:   50,
		KubernetesAPIBurst: 100,
		IssuerOptions:      controllerpkg.IssuerOptions{ClusterResourceNamespace: *clusterResourceNamespace},
		ACMEOptions: controllerpkg.ACMEOptions{
			DNS01Nameservers:        splitNonEmpty(*nameservers),
			DNS01CheckAuthoritative: false,
			DNS01CheckRetryPeriod:   *checkRetry,
		},
		SchedulerOptions: controllerpkg.SchedulerOptions{MaxConcurrentChallenges: 60},
		CertificateOptions: controllerpkg.CertificateOptions{
			CertificateRequestMinimumBackoffDuration: time.Second,
			CertificateRequestMaximumBackoffDuration: 10 * time.Second,
		},
	}
	if err := run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "cmcontroller:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opts controllerpkg.ContextOptions) error {
	factory, err := controllerpkg.NewContextFactory(ctx, opts)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, name := range controllers {
		ctor, ok := controllerpkg.Known()[name]
		if !ok {
			return fmt.Errorf("controller %q is not registered", name)
		}
		c, err := ctor(factory)
		if err != nil {
			return fmt.Errorf("controller %q: %w", name, err)
		}
		wg.Go(func() {
			if err := c.Run(5, ctx); err != nil {
				klog.ErrorS(err, "controller stopped", "controller", name)
			}
		})
	}
	informers, err := factory.Build("informers")
	if err != nil {
		return err
	}
	informers.KubeSharedInformerFactory.Start(ctx.Done())
	informers.SharedInformerFactory.Start(ctx.Done())
	informers.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
	klog.InfoS("cert-manager controllers started", "controllers", controllers)
	wg.Wait()
	return nil
}

func splitNonEmpty(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
