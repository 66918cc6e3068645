package channels

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// call is what hookTransport needs of a Send: fasthttp requests carry no
// context.
type call struct {
	ctx      context.Context
	deadline time.Time
}

// hookTransport is the RestHook client's fasthttp.RoundTripper. It is
// fasthttp's own write-then-read on a pooled connection, plus:
//   - the connection is closed when the Send's context ends, which ends
//     the request at once (fasthttp knows no contexts);
//   - a response body over MaxResponseBytes is not an error: its status
//     stands, the rest of the body is not read and the connection is
//     closed;
//   - a reused connection that fails before anything was read (the
//     receiver closed it while idle: net/http notices that in the
//     background, fasthttp does not) is closed and the request sent on
//     the next one, until one that is new: after an idle spell every
//     pooled connection may be stale.
type hookTransport struct{ rh *RestHook }

// RoundTrip sends req and reads resp on a connection of hc. It never asks
// the client to retry: it does what retrying there is itself.
func (t hookTransport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (retry bool, err error) {
	c := &call{ctx: context.Background(), deadline: time.Now().Add(t.rh.cfg.DefaultTimeout)}
	if v, ok := t.rh.calls.Load(req); ok {
		c = v.(*call)
	}
	for {
		left := time.Until(c.deadline)
		if left <= 0 {
			return false, fasthttp.ErrTimeout
		}
		cc, err := hc.AcquireConn(left, req.ConnectionClose())
		if err != nil {
			return false, err
		}
		reused := !cc.LastUseTime().IsZero()
		stale, keep, err := t.attempt(hc, cc.Conn(), c, req, resp)
		if keep {
			hc.ReleaseConn(cc)
		} else {
			hc.CloseConn(cc)
		}
		if stale && reused && c.ctx.Err() == nil {
			resp.Reset()
			continue
		}
		return false, err
	}
}

// attempt sends req on conn and reads resp. keep says whether conn may
// serve another request; stale reports a failure before any byte of an
// answer was read.
func (t hookTransport) attempt(hc *fasthttp.HostClient, conn net.Conn, c *call, req *fasthttp.Request,
	resp *fasthttp.Response) (stale, keep bool, err error) {
	stop := context.AfterFunc(c.ctx, func() { _ = conn.Close() })
	read := false
	if err = conn.SetDeadline(c.deadline); err == nil {
		bw := hc.AcquireWriter(conn)
		if err = req.Write(bw); err == nil {
			err = bw.Flush()
		}
		hc.ReleaseWriter(bw)
	}
	if err == nil {
		br := hc.AcquireReader(conn)
		err = resp.ReadLimitBody(br, int(t.rh.cfg.MaxResponseBytes))
		read = !nothingRead(err)
		hc.ReleaseReader(br)
	}
	aborted := !stop()
	keep = err == nil && !aborted && !resp.ConnectionClose() && !req.ConnectionClose()
	switch {
	case aborted:
		return false, false, c.ctx.Err()
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return false, false, nil
	}
	return err != nil && !read, keep, err
}

// nothingRead reports whether a failed read of a response got no byte of
// it: the receiver closed the connection first.
func nothingRead(err error) bool {
	var nr fasthttp.ErrNothingRead
	return errors.As(err, &nr) || errors.Is(err, io.EOF)
}

// isTimeout reports whether err is a deadline reached.
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		errors.As(err, &te) && te.Timeout()
}
