// Command cmcontroller is TEST INFRASTRUCTURE for the end-to-end tests,
// `make demo` and the in-cluster node tests: cert-manager's own controllers
// and cainjector, run from cert-manager's packages. The upstream cmd/controller
// and cmd/cainjector are modules the proxy does not serve (their dependencies
// include vcert versions it refuses), so this small main builds the same
// controllers without them. It is never part of the product.
//
// Two modes:
//
//	cmcontroller [--kubeconfig FILE] [--cluster-resource-namespace NS]
//	             [--dns01-recursive-nameservers HOST:PORT,...] [--dns01-check-retry-period D]
//
// runs the ACME, SelfSigned and CA issuers and the certificate controllers;
//
//	cmcontroller cainjector [--kubeconfig FILE]
//
// runs cainjector for APIServices, webhook configurations and CRDs, sourcing
// CAs from Certificates (cert-manager.io/inject-ca-from) and Secrets.
//
// Without --kubeconfig both use the Pod's service account. Neither does
// leader election, so run one replica of each; neither serves metrics or
// health probes.
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

	corev1 "k8s.io/api/core/v1"
	apiext "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	kscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	apireg "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	cmscheme "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned/scheme"
	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	"github.com/cert-manager/cert-manager/pkg/controller/cainjector"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/util"

	_ "github.com/cert-manager/cert-manager/pkg/controller/acmechallenges"
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmeorders"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/acme"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/acme"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// controllers are the ones an ACME issuance through a DNS-01 webhook and the
// chart's SelfSigned/CA PKI need.
var controllers = []string{
	"issuers", "clusterissuers",
	"certificates-trigger", "certificates-key-manager", "certificates-request-manager",
	"certificates-readiness", "certificates-issuing", "certificates-revision-manager",
	"certificaterequests-approver", "certificaterequests-issuer-acme",
	"certificaterequests-issuer-selfsigned", "certificaterequests-issuer-ca",
	"orders", "challenges",
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = logf.NewContext(ctx, klog.Background(), "cmcontroller")

	var err error
	if len(os.Args) > 1 && os.Args[1] == "cainjector" {
		err = runCAInjector(ctx, os.Args[2:])
	} else {
		err = runControllers(ctx, os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cmcontroller:", err)
		os.Exit(1)
	}
}

func runControllers(ctx context.Context, args []string) error {
	flags := flag.NewFlagSet("cmcontroller", flag.ExitOnError)
	klog.InitFlags(flags)
	kubeconfig := flags.String("kubeconfig", "", "kubeconfig of the API server; empty: the Pod's service account")
	clusterResourceNamespace := flags.String("cluster-resource-namespace", "cert-manager", "namespace of ClusterIssuer Secrets")
	nameservers := flags.String("dns01-recursive-nameservers", "", "comma-separated host:port used for DNS-01 self checks and zone lookups")
	checkRetry := flags.Duration("dns01-check-retry-period", 2*time.Second, "time between DNS-01 self checks")
	_ = flags.Parse(args) // ExitOnError

	factory, err := controllerpkg.NewContextFactory(ctx, controllerpkg.ContextOptions{
		Kubeconfig:         *kubeconfig,
		KubernetesAPIQPS:   50,
		KubernetesAPIBurst: 100,
		IssuerOptions:      controllerpkg.IssuerOptions{ClusterResourceNamespace: *clusterResourceNamespace},
		ACMEOptions: controllerpkg.ACMEOptions{
			DNS01Nameservers:        splitNonEmpty(*nameservers),
			DNS01CheckAuthoritative: false,
			DNS01CheckRetryPeriod:   *checkRetry,
		},
		SchedulerOptions:   controllerpkg.SchedulerOptions{MaxConcurrentChallenges: 60},
		CertificateOptions: certificateOptions(),
	})
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

// runCAInjector runs cert-manager's cainjector as upstream cmd/cainjector
// does with its default options, minus leader election and servers.
func runCAInjector(ctx context.Context, args []string) error {
	flags := flag.NewFlagSet("cmcontroller cainjector", flag.ExitOnError)
	klog.InitFlags(flags)
	kubeconfig := flags.String("kubeconfig", "", "kubeconfig of the API server; empty: the Pod's service account")
	_ = flags.Parse(args) // ExitOnError
	ctrl.SetLogger(klog.Background())

	config, err := restConfig(*kubeconfig)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(kscheme.AddToScheme(scheme))
	utilruntime.Must(cmscheme.AddToScheme(scheme))
	utilruntime.Must(apiext.AddToScheme(scheme))
	utilruntime.Must(apireg.AddToScheme(scheme))
	mgr, err := ctrl.NewManager(util.RestConfigWithUserAgent(config, "cainjector"), ctrl.Options{
		Scheme: scheme,
		// Secrets are read directly, as upstream does, so no informer lists
		// every Secret's data.
		Client:                 client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	err = cainjector.RegisterAllInjectors(ctx, mgr, cainjector.SetupOptions{
		EnableCertificatesDataSource: true,
		EnabledReconcilersFor: map[string]bool{
			cainjector.MutatingWebhookConfigurationName:   true,
			cainjector.ValidatingWebhookConfigurationName: true,
			cainjector.APIServiceName:                     true,
			cainjector.CustomResourceDefinitionName:       true,
		},
	})
	if err != nil {
		return fmt.Errorf("registering injectors: %w", err)
	}
	klog.InfoS("cert-manager cainjector started")
	return mgr.Start(ctx)
}

// restConfig reads kubeconfig, or the Pod's service account when it is empty.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return rest.InClusterConfig()
	}
	return clientcmd.BuildConfigFromFlags("", kubeconfig)
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
