package fakecf_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestFakeCF(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "FakeCF")
}
