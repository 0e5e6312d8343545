package config_test

import (
	"bytes"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/config"
)

func env(vars map[string]string) *config.Env {
	return config.New(func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	})
}

const vcap = `{
  "user-provided": [
    {"name": "discovery-secrets", "credentials": {"BROKER_PASSWORD": "from-vcap", "UAA_PASSWORD": "uaa-from-vcap", "PORT": 9000, "FLAG": true, "NESTED": {"x": 1}}}
  ],
  "aws-s3-bucket": [
    {"name": "bucket", "credentials": {"BUCKET_NAME": "not-user-provided"}}
  ]
}`

var _ = Describe("Env", func() {
	It("reads the environment first, then user-provided credentials in VCAP_SERVICES", func() {
		e := env(map[string]string{"VCAP_SERVICES": vcap, "BROKER_PASSWORD": "from-env"})
		Expect(e.String("BROKER_PASSWORD", "")).To(Equal("from-env"))
		Expect(e.String("UAA_PASSWORD", "")).To(Equal("uaa-from-vcap"))
		Expect(e.Port(8080)).To(Equal(9000))
		Expect(e.String("FLAG", "")).To(Equal("true"))
		Expect(e.String("NESTED", "default")).To(Equal("default"))
		Expect(e.String("BUCKET_NAME", "")).To(BeEmpty(), "only user-provided services are read")
		Expect(e.Err()).NotTo(HaveOccurred())
	})

	It("treats a blank value as unset", func() {
		e := env(map[string]string{"SERVICE_ID": "  "})
		e.Required("SERVICE_ID")
		Expect(e.Err()).To(MatchError(ContainSubstring("SERVICE_ID is required")))
	})

	It("names every problem in one error", func() {
		e := env(map[string]string{"PORT": "eighty", "API_ENDPOINT": "ftp://x", "LOG_LEVEL": "loud"})
		e.Port(8080)
		e.CF()
		e.LogLevel()
		e.Catalog()
		err := e.Err()
		Expect(err).To(MatchError(config.ErrInvalid))
		for _, part := range []string{
			"PORT must be a whole number", "API_ENDPOINT must be an http or https URL",
			"LOG_LEVEL must be one of debug, info, error", "SERVICE_ID is required", "PLAN_ID is required",
			"CF credentials are required",
		} {
			Expect(err.Error()).To(ContainSubstring(part))
		}
	})

	It("reports a malformed VCAP_SERVICES", func() {
		e := env(map[string]string{"VCAP_SERVICES": "{not json"})
		Expect(e.Err()).To(MatchError(ContainSubstring("VCAP_SERVICES: not valid JSON")))
	})

	It("reports credentials given twice with different values", func() {
		_, err := config.ParseVCAPServices([]byte(`{"user-provided":[
			{"name":"a","credentials":{"X":"1"}},{"name":"b","credentials":{"X":"2"}}]}`))
		Expect(err).To(MatchError(ContainSubstring(`X (services "a" and "b")`)))
	})

	It("never echoes credentials embedded in a URL", func() {
		e := env(map[string]string{"API_ENDPOINT": "https://user:hunter2@api.example.com"})
		e.URL("API_ENDPOINT", true)
		Expect(e.Err()).To(MatchError(ContainSubstring("must not carry credentials")))
		Expect(e.Err().Error()).NotTo(ContainSubstring("hunter2"))
	})

	DescribeTable("CF credentials",
		func(vars map[string]string, problem string) {
			vars["API_ENDPOINT"] = "https://api.example.com/"
			e := env(vars)
			c := e.CF()
			if problem == "" {
				Expect(e.Err()).NotTo(HaveOccurred())
				Expect(c.API).To(Equal("https://api.example.com"))
			} else {
				Expect(e.Err()).To(MatchError(ContainSubstring(problem)))
			}
		},
		Entry("password grant", map[string]string{"UAA_USERNAME": "u", "UAA_PASSWORD": "p"}, ""),
		Entry("client credentials", map[string]string{"CF_CLIENT_ID": "c", "CF_CLIENT_SECRET": "s"}, ""),
		Entry("both", map[string]string{"UAA_USERNAME": "u", "UAA_PASSWORD": "p", "CF_CLIENT_ID": "c", "CF_CLIENT_SECRET": "s"}, "not both"),
		Entry("half a pair", map[string]string{"UAA_USERNAME": "u"}, "must be set together"),
		Entry("none", map[string]string{}, "CF credentials are required"),
	)

	DescribeTable("store",
		func(vars map[string]string, problem string) {
			e := env(vars)
			e.Store()
			if problem == "" {
				Expect(e.Err()).NotTo(HaveOccurred())
			} else {
				Expect(e.Err()).To(MatchError(ContainSubstring(problem)))
			}
		},
		Entry("bucket", map[string]string{"BUCKET_NAME": "b", "AWS_REGION": "eu-west-2"}, ""),
		Entry("bucket with an S3-compatible endpoint", map[string]string{"BUCKET_NAME": "b", "AWS_REGION": "x", "S3_ENDPOINT": "http://127.0.0.1:9000"}, ""),
		Entry("directory", map[string]string{"TARGETS_PATH": "/tmp/t"}, ""),
		Entry("bucket without region", map[string]string{"BUCKET_NAME": "b"}, "AWS_REGION is required"),
		Entry("both", map[string]string{"BUCKET_NAME": "b", "AWS_REGION": "x", "TARGETS_PATH": "/t"}, "not both"),
		Entry("neither", map[string]string{}, "a store is required"),
		Entry("TARGETS_PATH none, as the Ruby service's manifest set it, with a bucket", map[string]string{"BUCKET_NAME": "b", "AWS_REGION": "x", "TARGETS_PATH": "none"}, ""),
		Entry("TARGETS_PATH none alone", map[string]string{"TARGETS_PATH": "none"}, "a store is required"),
		Entry("an access key id without its secret", map[string]string{"BUCKET_NAME": "b", "AWS_REGION": "x", "AWS_ACCESS_KEY_ID": "AKID"}, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together"),
		Entry("a secret without its access key id", map[string]string{"BUCKET_NAME": "b", "AWS_REGION": "x", "AWS_SECRET_ACCESS_KEY": "s"}, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together"),
	)

	It("reads the S3 credentials from VCAP_SERVICES, where cf push users keep them", func() {
		e := env(map[string]string{"BUCKET_NAME": "b", "AWS_REGION": "eu-west-2", "VCAP_SERVICES": `{"user-provided":[{"name":"s","credentials":{
			"AWS_ACCESS_KEY_ID":"AKIDVCAP","AWS_SECRET_ACCESS_KEY":"secret-from-vcap","AWS_SESSION_TOKEN":"token-from-vcap"}}]}`})
		s := e.Store()
		Expect(e.Err()).NotTo(HaveOccurred())
		Expect(s.AccessKeyID).To(Equal("AKIDVCAP"))
		Expect(s.SecretAccessKey).To(Equal("secret-from-vcap"))
		Expect(s.SessionToken).To(Equal("token-from-vcap"))
	})

	It("treats TARGETS_PATH none as no directory", func() {
		e := env(map[string]string{"BUCKET_NAME": "b", "AWS_REGION": "x", "TARGETS_PATH": "none"})
		Expect(e.Store().Path).To(BeEmpty())
	})

	It("bounds integers and durations", func() {
		e := env(map[string]string{"N": "59", "D": "30s", "BAD": "soon"})
		Expect(e.Int("N", 300, 60, 86400)).To(Equal(300))
		Expect(e.Duration("D", time.Minute, time.Minute)).To(Equal(time.Minute))
		Expect(e.Duration("BAD", time.Minute, 0)).To(Equal(time.Minute))
		Expect(e.Err()).To(MatchError(And(
			ContainSubstring("N must be between 60 and 86400, got 59"),
			ContainSubstring("D must be at least 1m0s"),
			ContainSubstring("BAD must be a duration"),
		)))
	})
})

var _ = Describe("Logger", func() {
	It("writes JSON lines and redacts secrets", func() {
		var out bytes.Buffer
		logger := config.Logger("test", "debug", &out)
		logger.Info("hello", map[string]any{"password": "hunter2", "header": "Bearer abc.def", "app_guid": "g"})
		Expect(out.String()).To(ContainSubstring(`"app_guid":"g"`))
		Expect(out.String()).NotTo(ContainSubstring("hunter2"))
		Expect(out.String()).NotTo(ContainSubstring("abc.def"))
	})

	It("drops lines below the level", func() {
		var out bytes.Buffer
		config.Logger("test", "error", &out).Info("quiet")
		Expect(out.String()).To(BeEmpty())
	})
})
