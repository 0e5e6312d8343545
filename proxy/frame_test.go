package proxy

import (
	"strconv"
	"strings"
	"testing"
	"unsafe"

	. "github.com/onsi/gomega"
)

// TestFrameUnframed checks the in-place framing of bodies of unknown
// length, up to a body that fills the pooled buffer.
func TestFrameUnframed(t *testing.T) {
	g := NewWithT(t)
	const head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	frame := func(body string, chunked, last bool) string {
		pooled := answerBuffers.Get().(*[]byte)
		defer answerBuffers.Put(pooled)
		a := unframedBuffer(pooled, []byte(head))
		bodyAt := len(a)
		return string(frameUnframed(append(a, body...), bodyAt, chunked, last))
	}
	g.Expect(frame("", true, true)).To(Equal(head + "0\r\n\r\n"))
	g.Expect(frame("up 1\n", true, true)).To(Equal(head + "5\r\nup 1\n\r\n0\r\n\r\n"))
	g.Expect(frame("up 1\n", true, false)).To(Equal(head + "5\r\nup 1\n\r\n"))
	g.Expect(frame("up 1\n", false, true)).To(Equal(head + "up 1\n"))

	// A body up to the limit the readers stop at is framed within the
	// pooled buffer, without a copy.
	pooled := answerBuffers.Get().(*[]byte)
	defer answerBuffers.Put(pooled)
	a := unframedBuffer(pooled, []byte(head))
	bodyAt := len(a)
	size := cap(a) - unframedTail - bodyAt
	a = append(a, strings.Repeat("x", size)...)
	framed := frameUnframed(a, bodyAt, true, true)
	hex := strconv.FormatInt(int64(size), 16)
	g.Expect(string(framed)).To(Equal(head + hex + "\r\n" + strings.Repeat("x", size) + "\r\n0\r\n\r\n"))
	g.Expect(unsafe.SliceData(framed)).To(BeIdenticalTo(&(*pooled)[:cap(*pooled)][chunkLineRoom-len(hex)-2]))
}
