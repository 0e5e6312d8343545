package main

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
)

func TestPaasProxy(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "paas-proxy")
}

var binary string

var _ = SynchronizedBeforeSuite(func() []byte {
	path, err := gexec.Build("github.com/alphagov/cf-app-discovery/cmd/paas-proxy")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(gexec.CleanupBuildArtifacts)
	return []byte(path)
}, func(path []byte) {
	binary = string(path)
})
