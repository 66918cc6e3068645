package channels

import (
	"context"
	"errors"
	"io"
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
//     receiver closed it while idle) asks the client for one more
//     attempt, which takes another connection.
type hookTransport struct{ rh *RestHook }

// RoundTrip sends req and reads resp on a connection of hc.
func (t hookTransport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (retry bool, err error) {
	c := &call{ctx: context.Background(), deadline: time.Now().Add(t.rh.cfg.DefaultTimeout)}
	if v, ok := t.rh.calls.Load(req); ok {
		c = v.(*call)
	}
	left := time.Until(c.deadline)
	if left <= 0 {
		return false, fasthttp.ErrTimeout
	}
	cc, err := hc.AcquireConn(left, req.ConnectionClose())
	if err != nil {
		return false, err
	}
	conn := cc.Conn()
	reused := !cc.LastUseTime().IsZero()
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
	switch {
	case err == nil && !aborted && !resp.ConnectionClose() && !req.ConnectionClose():
		hc.ReleaseConn(cc)
	default:
		hc.CloseConn(cc)
	}
	switch {
	case aborted:
		return false, c.ctx.Err()
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return false, nil
	case err != nil && reused && !read && c.ctx.Err() == nil && time.Now().Before(c.deadline):
		return true, err
	}
	return false, err
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
