package httpsd_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestHTTPSD(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "httpsd")
}
