package cfapi_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestCFAPI(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "cfapi")
}
